"""Make asv's published pages self-contained: its index.html loads jQuery, flot, bootstrap and
friends from CDNs; the pages here load vendored copies (harness/publish/asv_vendor, from the npm
packages named in its README) instead, so they work on an intranet or offline runner, leak no
visits to third parties, and can be tested in a headless browser without network access.

Each rewritten tag keeps Subresource Integrity, computed from the vendored file.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from pathlib import Path

from harness.errors import HarnessError

VENDOR_SOURCE = Path(__file__).with_name("asv_vendor")
VENDOR_DIR = "vendor"  # inside the HTML folder

# URL asv 0.6's index.html loads -> vendored file (relative to asv_vendor/).
VENDORED = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "flot/jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "flot/jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": "flot/jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": "flot/jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "flot/jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap/js/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
}

# A script or stylesheet tag that loads from the network (links to pages are left alone).
REMOTE_TAG = re.compile(r'<(?:script[^>]*\bsrc|link[^>]*\bhref)="(https?://[^"]+)"[^>]*>')
INTEGRITY = re.compile(r'\bintegrity="[^"]*"')


def integrity(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def localize_tag(tag: str, url: str) -> str:
    local = VENDORED.get(url)
    if local is None:
        if tag.startswith("<link") and "stylesheet" not in tag:
            return tag
        raise HarnessError(f"asv's page loads {url} from the network; add a vendored copy to "
                           "harness/publish/asv_vendor and to VENDORED in harness/publish/asv_assets.py")
    tag = tag.replace(url, f"{VENDOR_DIR}/{local}")
    sri = f'integrity="{integrity(VENDOR_SOURCE / local)}"'
    return INTEGRITY.sub(sri, tag) if INTEGRITY.search(tag) else tag.replace(">", f" {sri}>", 1)


def localize(html: str) -> str:
    return REMOTE_TAG.sub(lambda match: localize_tag(match.group(0), match.group(1)), html)


def vendor_pages(html_dir: Path) -> None:
    """Copy the vendored files next to the pages and point every .html file at them."""
    html_dir = Path(html_dir)
    shutil.copytree(VENDOR_SOURCE, html_dir / VENDOR_DIR, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("README.md"))
    for page in html_dir.glob("*.html"):
        page.write_text(localize(page.read_text(encoding="utf-8")), encoding="utf-8")
