"""One Kubeflow Pipelines component per ML stage; each is a typed interface around a step function.

Import a component from its own module (`from flywheel_components.train import train`): the
package does not re-export them, since a module and its component share a name.
"""
