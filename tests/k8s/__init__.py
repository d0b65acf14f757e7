"""Static checks of Flywheel's Kubernetes side: images, manifests, Helm chart and workflows."""
