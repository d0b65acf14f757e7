"""A stand-in for the Kubeflow Pipelines REST API (v2beta1), for tests only.

MOCK: no Kubeflow Pipelines server can run on this machine (it needs a cluster), so this
answers the handful of calls `kfp.Client` makes to upload a pipeline and start a run, with the
JSON shapes of kfp_server_api's models, and records what it received. The real client code
(kfp.Client, kfp_server_api) runs unchanged against it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI, Request, UploadFile


def create_standin() -> tuple[FastAPI, dict[str, Any]]:
    """The app and the state it records: pipelines, versions, experiments, runs, packages."""
    state: dict[str, Any] = {
        "pipelines": [],
        "versions": [],
        "experiments": [],
        "runs": [],
        "packages": [],
    }
    app = FastAPI()

    @app.get("/apis/v2beta1/healthz")
    def healthz() -> dict[str, Any]:
        return {"multi_user": False}

    @app.get("/apis/v2beta1/pipelines")
    def list_pipelines(filter: str = "") -> dict[str, Any]:
        wanted = json.loads(filter)["predicates"][0]["stringValue"] if filter else None
        found = [p for p in state["pipelines"] if wanted in (None, p["display_name"])]
        return {"pipelines": found, "total_size": len(found)} if found else {}

    @app.post("/apis/v2beta1/pipelines/upload")
    async def upload(uploadfile: UploadFile, name: str, description: str = "") -> dict[str, Any]:
        state["packages"].append(await uploadfile.read())
        pipeline = {
            "pipeline_id": uuid.uuid4().hex,
            "display_name": name,
            "description": description,
        }
        state["pipelines"].append(pipeline)
        state["versions"].append(
            {
                "pipeline_id": pipeline["pipeline_id"],
                "pipeline_version_id": uuid.uuid4().hex,
                "display_name": name,
            }
        )
        return pipeline

    @app.get("/apis/v2beta1/pipelines/{pipeline_id}/versions")
    def versions(pipeline_id: str) -> dict[str, Any]:
        found = [v for v in state["versions"] if v["pipeline_id"] == pipeline_id]
        return {"pipeline_versions": found, "total_size": len(found)}

    @app.post("/apis/v2beta1/pipelines/upload_version")
    async def upload_version(uploadfile: UploadFile, name: str, pipelineid: str) -> dict[str, Any]:
        state["packages"].append(await uploadfile.read())
        version = {
            "pipeline_id": pipelineid,
            "pipeline_version_id": uuid.uuid4().hex,
            "display_name": name,
        }
        state["versions"].append(version)
        return version

    @app.get("/apis/v2beta1/experiments")
    def experiments(filter: str = "") -> dict[str, Any]:
        wanted = json.loads(filter)["predicates"][0]["stringValue"] if filter else None
        found = [e for e in state["experiments"] if wanted in (None, e["display_name"])]
        return {"experiments": found, "total_size": len(found)} if found else {}

    @app.post("/apis/v2beta1/experiments")
    async def create_experiment(request: Request) -> dict[str, Any]:
        body = await request.json()
        experiment = {"experiment_id": uuid.uuid4().hex, "display_name": body["display_name"]}
        state["experiments"].append(experiment)
        return experiment

    @app.post("/apis/v2beta1/runs")
    async def create_run(request: Request) -> dict[str, Any]:
        body = await request.json()
        run = {**body, "run_id": uuid.uuid4().hex, "state": "PENDING"}
        state["runs"].append(run)
        return run

    return app, state
