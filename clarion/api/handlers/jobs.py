from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.jobs import service
from clarion.jobs.service import EXPORT, IMPORT


async def create_import_job(call: Call) -> Any:
    services = call.services
    return await service.create_import_job(
        services.db, services.queue, services.locations, call.ctx, call.params["ApplicationId"], call.body
    )


async def create_export_job(call: Call) -> Any:
    services = call.services
    return await service.create_export_job(
        services.db, services.queue, services.locations, call.ctx, call.params["ApplicationId"], call.body
    )


async def upload_import_file(call: Call) -> Any:
    """Clarion extension: the console's file upload, which an import job then reads."""
    services = call.services
    return await service.upload_import_file(services.db, services.locations, call.params["ApplicationId"], call.body)


async def get_export_file(call: Call) -> Any:
    """Clarion extension: one file an export job wrote, for the console's download."""
    p, services = call.params, call.services
    return await service.export_file(services.db, services.locations, p["ApplicationId"], p.get("JobId"), p.get("Part"))


async def get_import_job(call: Call) -> Any:
    return await service.get_job(call.services.db, call.params["ApplicationId"], call.params["JobId"], IMPORT)


async def get_export_job(call: Call) -> Any:
    return await service.get_job(call.services.db, call.params["ApplicationId"], call.params["JobId"], EXPORT)


async def _list(call: Call, job_type: str) -> Any:
    p = call.params
    return await service.list_jobs(
        call.services.db, p["ApplicationId"], job_type, p.get("PageSize"), p.get("Token"), p.get("SegmentId")
    )


async def get_import_jobs(call: Call) -> Any:
    return await _list(call, IMPORT)


async def get_export_jobs(call: Call) -> Any:
    return await _list(call, EXPORT)


HANDLERS: dict[str, Handler] = {
    "CreateImportJob": create_import_job,
    "ClarionUploadImportFile": upload_import_file,
    "GetImportJob": get_import_job,
    "GetImportJobs": get_import_jobs,
    "GetSegmentImportJobs": get_import_jobs,
    "CreateExportJob": create_export_job,
    "GetExportJob": get_export_job,
    "GetExportJobs": get_export_jobs,
    "ClarionGetExportFile": get_export_file,
    "GetSegmentExportJobs": get_export_jobs,
}
