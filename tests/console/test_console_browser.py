"""The console in a real headless Chromium (Debian's package, driven by Playwright) against a real gateway.

Set GATEWAY_CONSOLE_SCREENSHOT=docs/console.png to refresh the README's screenshot.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path

import pytest

from tests.console.seeding import seed_failed_job
from tests.gateway.processes import gateway_env, run, running_gateway
from tests.media_files import jpeg

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CHUNK = 204_800
WAIT = 60_000  # ms: the machine running the suite may be busy

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")]
sync_api = pytest.importorskip("playwright.sync_api")

WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective));
"""


def api(port: int, token: str, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page, port: int, token: str) -> None:
    reply = page.goto(f"http://127.0.0.1:{port}/console/")
    csp = reply.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp
    page.fill("#token", token)
    page.click("#sign-in-form button")
    page.wait_for_selector("#workspace", state="visible", timeout=WAIT)


def test_sign_in_upload_see_thumbnail_and_delete(browser, tmp_path):
    photo, blob = tmp_path / "photo.jpg", tmp_path / "three-mib.bin"
    photo.write_bytes(jpeg(640, 480))
    blob.write_bytes(os.urandom(3 * 1024 * 1024))
    with running_gateway(tmp_path) as (_, port, _log):
        token = run(["users", "add", "alice", "--staff"], gateway_env(tmp_path)).stdout.strip().splitlines()[-1]
        seed_failed_job(gateway_env(tmp_path), "no-worker-runs-this", 7)
        page = browser.new_page()
        page.add_init_script(WATCH_CSP)
        urls = []
        page.on("request", lambda request: urls.append(request.url))

        page.goto(f"http://127.0.0.1:{port}/console/")
        page.fill("#token", "not-a-token")
        page.click("#sign-in-form button")
        page.wait_for_selector("#sign-in-error:has-text('not valid')", timeout=WAIT)
        sign_in(page, port, token)
        page.wait_for_selector("#ops", state="visible", timeout=WAIT)  # alice is staff
        page.wait_for_selector("#readiness li.ok", timeout=WAIT)
        assert page.inner_text("#readiness").count(": ok") == 2
        page.wait_for_selector("#failed-table td:has-text('no-worker-runs-this:7')", timeout=WAIT)
        assert "failed: 1" in page.inner_text("#queue")
        page.click("#failed-table button:has-text('Retry')")
        page.wait_for_selector("#failed-table td:has-text('No failed jobs.')", timeout=WAIT)
        assert "queued: 1" in page.inner_text("#queue") and "failed: 0" in page.inner_text("#queue")

        page.set_input_files("#files", [str(photo), str(blob)])
        page.wait_for_function("() => document.querySelectorAll('#transfers li.done').length === 2", timeout=WAIT)
        bars = page.eval_on_selector_all("#transfers progress", "bars => bars.map(b => [b.value, b.max])")
        assert sorted(bars) == sorted([[photo.stat().st_size] * 2, [blob.stat().st_size] * 2])
        assert page.inner_text("#transfers li[data-name='photo.jpg'] .state") == "done"

        # The JPEG's thumbnail appears once the workers have made it (the grid polls meanwhile).
        page.wait_for_function("() => [...document.querySelectorAll('#grid .thumb img')]"
                               ".some(img => img.complete && img.naturalWidth > 0)", timeout=WAIT)
        assert page.locator("#grid li").count() == 2

        page.click("#grid li[title='three-mib.bin']")
        page.wait_for_selector("#detail[open]", timeout=WAIT)
        details = page.inner_text("#detail-fields")
        assert "3.0 MiB" in details and hashlib.md5(blob.read_bytes()).hexdigest() in details
        page.click("#detail-delete")
        page.wait_for_function("() => document.querySelectorAll('#grid li').length === 1", timeout=WAIT)
        left = api(port, token, "/api/v2/media/")["results"]
        assert [m["title"] for m in left] == ["photo.jpg"]
        assert left[0]["md5"] == hashlib.md5(photo.read_bytes()).hexdigest()
        assert left[0]["image_width"] == 640 and left[0]["thumbnails"]

        page.click("#grid li[title='photo.jpg']")
        assert "640 × 480" in page.inner_text("#detail-fields")
        page.click("#detail-close")
        assert page.evaluate("() => window.cspViolations") == []
        assert not any(token in url for url in urls)  # the token never travels in a URL
        if target := os.environ.get("GATEWAY_CONSOLE_SCREENSHOT"):
            page.wait_for_timeout(5500)  # let the ops panel refresh once with the finished jobs
            page.screenshot(path=target, full_page=True)


def upload_then_reload_after_four_chunks(page, path: Path) -> None:
    """Start uploading ``path``; from the fifth chunk on the network "fails" (the page retries),
    and the page is reloaded meanwhile, as a user closing the tab would."""
    sent = []

    def fail_after_four(route):
        if route.request.method != "POST":
            return route.continue_()
        sent.append(route.request)
        return route.continue_() if len(sent) <= 4 else route.abort()

    page.route("**/api/v2/media/upload/chunk/**", fail_after_four)
    page.set_input_files("#files", str(path))
    page.wait_for_function("() => document.querySelector('#transfers progress')?.value === 4 * 204800",
                           timeout=WAIT)
    while len(sent) < 5:
        page.wait_for_timeout(50)
    page.reload()
    page.unroute_all()
    page.wait_for_selector("#workspace", state="visible", timeout=WAIT)  # still signed in (this tab)


def test_an_upload_resumes_after_a_page_reload(browser, tmp_path):
    big = tmp_path / "resume-me.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024))  # 11 chunks
    with running_gateway(tmp_path) as (_, port, _log):
        token = run(["users", "add", "bob"], gateway_env(tmp_path)).stdout.strip().splitlines()[-1]
        page = browser.new_page()
        sign_in(page, port, token)

        upload_then_reload_after_four_chunks(page, big)

        chunk_posts = []
        page.on("request", lambda r: chunk_posts.append(r) if r.method == "POST" and "/upload/chunk/" in r.url
                else None)
        page.set_input_files("#files", str(big))  # the user picks the same file again
        page.wait_for_selector("#transfers li.done", timeout=WAIT)
        assert "resumed at 800.0 KiB" in page.inner_text("#transfers li .state")
        assert len(chunk_posts) == 11 - 4  # only what the server did not have
        media = api(port, token, "/api/v2/media/")["results"]
        assert len(media) == 1 and media[0]["size"] == big.stat().st_size
        assert media[0]["md5"] == hashlib.md5(big.read_bytes()).hexdigest()
        assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('gateway.upload:'))") == []

        # Files dropped on the page upload like picked ones (three at a time, the rest wait their turn).
        dropped = page.evaluate_handle("""() => {
            const transfer = new DataTransfer();
            for (let i = 1; i <= 5; i++) {
                transfer.items.add(new File([`dropped file ${i}`], `dropped-${i}.txt`, {type: "text/plain"}));
            }
            return transfer;
        }""")
        page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        page.wait_for_function("() => document.querySelectorAll('#transfers li.done').length === 6", timeout=WAIT)
        titles = {m["title"]: m for m in api(port, token, "/api/v2/media/")["results"]}
        for i in range(1, 6):
            assert titles[f"dropped-{i}.txt"]["md5"] == hashlib.md5(f"dropped file {i}".encode()).hexdigest()


def test_a_file_changed_behind_the_same_name_size_and_time_fails_once_then_starts_over(browser, tmp_path):
    target = tmp_path / "changing.bin"
    target.write_bytes(os.urandom(2 * 1024 * 1024))
    with running_gateway(tmp_path) as (_, port, _log):
        token = run(["users", "add", "carol"], gateway_env(tmp_path)).stdout.strip().splitlines()[-1]
        page = browser.new_page()
        sign_in(page, port, token)
        upload_then_reload_after_four_chunks(page, target)
        stat = target.stat()
        target.write_bytes(os.urandom(stat.st_size))  # new bytes, same size and modification time
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

        page.set_input_files("#files", str(target))
        page.wait_for_selector("#transfers li.failed", timeout=WAIT)
        assert "the file changed" in page.inner_text("#transfers li.failed .state")
        page.set_input_files("#files", str(target))  # picked again: a fresh upload
        page.wait_for_selector("#transfers li.done", timeout=WAIT)
        assert "resumed" not in page.inner_text("#transfers li.done .state")
        media = api(port, token, "/api/v2/media/")["results"]
        assert [m["md5"] for m in media] == [hashlib.md5(target.read_bytes()).hexdigest()]
