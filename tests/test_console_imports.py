"""Segment imports and exports in the console, in a real browser: a CSV file uploaded from the browser becomes an
import job whose progress and failed rows show as the API reports them, then an IMPORT segment; an export of it is
written where asked; an analyst may export but not import; the pages in Korean. One server and browser."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer
from console_browser import ConsolePage, console_server, english_strings
from pinpoint_calls import export_job, folder_of, wait_job

CSV = b"Id,ChannelType,Address\nk1,EMAIL,k1@example.com\nk2,EMAIL,k2@example.com\nk3,EMAIL,\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with console_server(Path(tmp_path_factory.mktemp("imports"))) as running:
        yield running


@pytest.fixture(scope="module")
def app_id(server: RunningServer) -> str:
    return server.client().create_app(CreateApplicationRequest={"Name": "imports"})["ApplicationResponse"]["Id"]


def test_a_marketer_imports_an_uploaded_file_and_exports_the_segment(
    console: ConsolePage, server: RunningServer, app_id: str
) -> None:
    page = console.page
    console.sign_in("mark", f"apps/{app_id}/segments")
    page.get_by_role("tab", name="Import and export").click()
    page.get_by_text("No imports yet.").wait_for()
    page.locator('input[type="file"]').set_input_files(
        {"name": "new customers.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    page.get_by_label("Segment name").fill("From the fair")
    page.get_by_role("button", name="Start import").click()
    job = page.get_by_test_id("import-jobs").get_by_test_id("job")
    job.get_by_test_id("job-status").filter(has_text="Completed").wait_for()
    assert job.get_by_test_id("job-counts").inner_text() == "1 of 1 files · 3 rows · 1 failed"
    assert "line 4" in job.inner_text() and "From the fair" in job.inner_text()
    console.screenshot("segments-import")

    exports = server.settings.data_dir / "exports" / app_id
    page.get_by_role("combobox", name="Segment", exact=True).click()
    page.get_by_role("option", name="From the fair").click()
    page.get_by_label("Destination").fill(str(exports))
    page.get_by_role("button", name="Start export").click()
    done = page.get_by_test_id("export-jobs").get_by_test_id("job")
    done.get_by_test_id("job-status").filter(has_text="Completed").wait_for()
    [part] = exports.rglob("part-*.gz")
    assert sorted(json.loads(line)["Id"] for line in gzip.decompress(part.read_bytes()).splitlines()) == [
        "k1",
        "k2",
    ]
    # The file the export wrote, downloaded from the console as it lies in the project's folder.
    with page.expect_download() as downloading:
        done.get_by_role("button", name="Download file 1").click()
    download = downloading.value
    assert download.suggested_filename == f"{part.parent.name}-part-00000.gz"
    assert Path(download.path()).read_bytes() == part.read_bytes()
    page.get_by_role("tab", name="Segments").click()
    page.get_by_test_id("segments").get_by_role("cell", name="From the fair").wait_for()


def test_an_analyst_exports_but_does_not_import_and_the_korean_tab(
    korean_console: ConsolePage, server: RunningServer, app_id: str
) -> None:
    client = server.client()  # an export of its own: tests of one module may run in different processes
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="seen", EndpointRequest={"ChannelType": "EMAIL", "Address": "s@example.com"}
    )
    exported = export_job(client, app_id, str(folder_of(server.settings, app_id, "exports") / "by-analyst"))
    assert wait_job(client, app_id, exported["Id"], "export")["JobStatus"] == "COMPLETED"
    page = korean_console.page
    korean_console.sign_in("ann", f"apps/{app_id}/segments")
    page.get_by_role("tab", name="가져오기와 내보내기").click()
    page.get_by_role("button", name="내보내기 시작").wait_for()
    page.get_by_test_id("import-jobs").or_(page.get_by_text("아직 가져오기 작업이 없습니다.")).first.wait_for()
    assert page.get_by_role("button", name="가져오기 시작").count() == 0
    # Analysts read exports: a finished export's file downloads here too.
    with page.expect_download() as downloading:
        page.get_by_test_id("export-jobs").get_by_role("button", name="파일 1 내려받기").first.click()
    assert downloading.value.suggested_filename.endswith("-part-00000.gz")
    shown = page.locator("body").inner_text()
    assert [text for text in english_strings("jobs") if text in shown] == []
    korean_console.screenshot("segments-jobs-ko")
