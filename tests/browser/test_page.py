"""The dashboard page in a real browser: what a user sees and clicks, live (WSGI middleware over a
real Flask app) and offline (``heaplens serve FILE.hlsnap``), and that names from the heap, written
to attack the page, are shown as text and never run.

Fixtures are in ``conftest.py``; the leaking app, and its hostile names, in ``leaky_shop.py``.
"""

import re
import urllib.request
from urllib.parse import urljoin

import pytest

from . import leaky_shop
from .conftest import MOUNT
from .leaky_shop import ATTRIBUTE, LONG, SCRIPT

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips, or under CI=true fails, every test
    expect = None

# Types are named after their module: browser.leaky_shop, here and in the offline snapshot.
SHOP = leaky_shop.__name__
LEAKING_TYPE = f"{SHOP}.LeakyOrder"
SCRIPT_TYPE = f"{SHOP}.{SCRIPT}"
# No line of text on the page may be longer than this: the 100,000-character name in the heap
# must arrive cut. (Lines, not elements: the comparison's report is one <pre> of many lines,
# several thousand characters long when many types grew.)
LONGEST_LINE = 5_000

# What the page's DOM holds that an injection would change (evaluated in the page).
INSPECT = """() => {
  const all = Array.from(document.querySelectorAll("*"));
  const leaves = all.filter((e) => e.children.length === 0);
  const lines = leaves.flatMap((e) => e.textContent.split("\\n"));
  return {
    pwned: typeof window.__pwned,
    scripts: Array.from(document.scripts).map((s) => s.getAttribute("src")),
    handlers: all.flatMap((e) => e.getAttributeNames()
      .filter((a) => a.toLowerCase().startsWith("on")).map((a) => e.tagName + "[" + a + "]")),
    embedded: Array.from(document.querySelectorAll(
      "iframe, frame, object, embed, base, form, meta[http-equiv], link:not([rel=stylesheet])"))
      .map((e) => e.outerHTML.slice(0, 100)),
    images: Array.from(document.images).map((i) => i.getAttribute("src").slice(0, 40)),
    longest: Math.max(0, ...lines.map((l) => l.length)),
    longestLine: lines.sort((a, b) => b.length - a.length)[0]?.slice(0, 300),
    text: document.body.innerText,
    csp: window.__cspViolations,
  };
}"""


def heading(page):
    return page.locator("main h1")


def section(page, title):
    """The table that follows the ``<h2>`` starting with ``title``."""
    return page.locator(f"main h2:has-text('{title}') + div.table table")


def instance_rows(page):
    """The rows of a type page's instances: its last table (what holds them comes first)."""
    return page.locator("main table").last.locator("tbody tr")


def take_snapshot(page):
    """Clicks "Take a snapshot" and waits for the overview to show it; returns the button."""
    take = page.get_by_role("button", name="Take a snapshot")
    take.click()
    expect(page.locator("main")).to_contain_text("Snapshot:")
    return take


def type_link(page, name):
    """The link to a type's page in the page's tables (the verdict above them may link the same
    type)."""
    return page.locator("main table").get_by_role("link", name=name, exact=True)


def nothing_injected(page):
    """Asserts the page shows heap strings as text only: no script ran, no element or attribute
    came from the data, nothing was blocked by the CSP, and nothing was logged as an error.
    Returns the page's visible text."""
    seen = page.evaluate(INSPECT)
    assert seen["pwned"] == "undefined"
    assert seen["scripts"] == ["assets/app.js"]  # the page's own, and nothing else
    assert seen["handlers"] == []
    assert seen["embedded"] == []
    assert all(src.startswith("data:image/svg+xml") for src in seen["images"]), seen["images"]
    assert seen["longest"] <= LONGEST_LINE, seen["longestLine"]
    assert LONG[:1000] not in seen["text"]
    assert seen["csp"] == []
    assert page.problems == []
    return seen["text"]


def wait_for_image(page, selector):
    """Waits until the image is loaded and decoded (an image that fails never gets a width)."""
    page.wait_for_function(
        "(s) => { const i = document.querySelector(s);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )


def shoot(page, screenshots, name):
    """The whole page as ``name.png``, and its first screen as ``name-top.png`` (the README's)."""
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    page.screenshot(path=str(screenshots / f"{name}-top.png"))


def test_the_overview_shows_the_leaking_type_and_its_growth_chart(page, serve_shop, screenshots):
    """With a few samples of steady growth, the overview lists the leaking type as a steady
    grower, shows the growth chart, and says the process is live."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily()
    row = page.locator("main tr", has=page.get_by_role("link", name=LEAKING_TYPE, exact=True))
    with shop.still_leaking():
        # The page reads the history once; a sample the leak had not yet outgrown when it did
        # (a loaded machine) reads as a leak that stopped, so look again after the next sample.
        page.goto(shop.url)
        for _ in range(10):
            expect(heading(page)).to_have_text("Overview")
            expect(row).to_have_count(1)
            if row.locator("td.steady").count():
                break
            shop.wait_for_samples(1)
            page.reload()
        expect(page.locator("#process")).to_contain_text("live")
        expect(row.locator("td.steady")).to_contain_text("steady")
        # The first screen answers first: leaking, what, and (after a snapshot) what holds it.
        verdict = page.locator("p.verdict")
        expect(verdict).to_contain_text("Leaking: ")
        expect(page.locator("ul.verdict")).to_contain_text("Take a snapshot to see what holds")
        take_snapshot(page)
        expect(heading(page)).to_have_text("Overview")
        expect(page.locator("ul.verdict")).to_contain_text("Held by: ")
        expect(page.locator("ul.verdict")).to_contain_text("['ORDERS']")
        wait_for_image(page, "main img.verdict-path")  # and its path, drawn
    wait_for_image(page, "main img.chart")
    shoot(page, screenshots, "overview")
    nothing_injected(page)


def test_a_type_leads_to_its_instances_and_an_instance_to_what_keeps_it_alive(
    page, serve_shop, screenshots
):
    """After a snapshot, the leaking type lists its instances; clicking one shows its retaining
    path from the module global, its referrers and referents, and the path's picture; the brand
    link and the browser's back button move between the views."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    # Live, instances are listed from the latest snapshot.
    take_snapshot(page)
    type_link(page, LEAKING_TYPE).click()
    expect(page).to_have_url(re.compile(f"#/type/{re.escape(LEAKING_TYPE)}/1$"))
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    instances = instance_rows(page)
    expect(instances.first).to_contain_text(LEAKING_TYPE)
    assert instances.count() >= 2
    shoot(page, screenshots, "type")

    instances.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#/object/[0-9]+$"))
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    path = page.locator("main p.path")
    expect(path).to_contain_text(f"module {SHOP}")
    expect(path).to_contain_text("['ORDERS']")
    expect(page.locator("main ol li").last).to_contain_text(LEAKING_TYPE)
    expect(section(page, "Referrers")).to_contain_text("list")
    for attribute in ("gift", "card", "stash"):
        expect(section(page, "Referents")).to_contain_text(f"via its .{attribute} attribute")
    wait_for_image(page, "main img.picture")
    shoot(page, screenshots, "object")
    nothing_injected(page)

    page.get_by_role("link", name="heaplens", exact=True).click()
    expect(heading(page)).to_have_text("Overview")
    page.go_back()
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    expect(page.locator("main p.path")).to_contain_text("ORDERS")
    page.go_back()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    nothing_injected(page)


def test_a_type_page_groups_its_instances_by_holder_and_lists_each_groups_own(
    page, serve_shop, screenshots, monkeypatch
):
    """A type held in two places: the type page's "Held by" table has a row per holder, with how
    many it holds and what freeing them would free (retained); a row's count lists that holder's
    instances only, paged, and "All N instances" lists them all again."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    featured = [leaky_shop.LeakyOrder(-1), leaky_shop.LeakyOrder(-2)]
    monkeypatch.setattr(leaky_shop, "FEATURED", featured, raising=False)
    page.goto(shop.url)
    take_snapshot(page)
    total = len(leaky_shop.ORDERS) + len(featured)
    type_link(page, LEAKING_TYPE).click()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    held_by = section(page, "Held by")
    rows = held_by.locator("tbody tr")
    expect(rows.first).to_contain_text("['ORDERS']")
    expect(rows.first.locator("td").first).to_have_text(f"{len(leaky_shop.ORDERS):,}")
    featured_row = rows.filter(has_text="['FEATURED']")
    expect(featured_row).to_have_count(1)
    expect(featured_row.locator("td").first).to_have_text("2")
    # Two orders, each with its gift, card and dict: more than two objects' bytes retained.
    retained = featured_row.locator("td").nth(1).inner_text()
    assert retained.endswith("B") and retained != "0 B", retained
    shoot(page, screenshots, "type-held-by")

    featured_row.get_by_role("link", name="2", exact=True).click()
    expect(page).to_have_url(re.compile(f"#/type/{re.escape(LEAKING_TYPE)}/1/[0-9]+$"))
    expect(page.locator("main h2", has_text="Instances held by")).to_contain_text(
        "['FEATURED'] -> list (2)"
    )
    expect(instance_rows(page)).to_have_count(2)
    group_heading = page.locator("main h2", has_text="Instances held by")
    for i in range(2):
        # Back on the group's page before the next click (the object page has tables too).
        expect(group_heading).to_be_visible()
        instance_rows(page).nth(i).get_by_role("link").click()
        expect(page).to_have_url(re.compile(r"#/object/[0-9]+$"))
        expect(page.locator("main p.path")).to_contain_text("['FEATURED']")
        page.go_back()
    expect(group_heading).to_be_visible()
    # The heading still counts every instance; its link lists them all.
    expect(page.locator("main p").first).to_contain_text(f"{total:,} objects")
    page.get_by_role("link", name=f"All {total:,} instances").click()
    expect(page).to_have_url(re.compile(f"#/type/{re.escape(LEAKING_TYPE)}/1$"))
    expect(page.locator("main h2", has_text="Instances held by")).to_have_count(0)
    assert instance_rows(page).count() == min(total, 50)
    nothing_injected(page)


def test_two_snapshots_compared_name_the_leak_and_its_holder(page, serve_shop, screenshots):
    """"Take a snapshot" works twice; the second shows the comparison, whose leak suspects name
    the leaking type and the global holding it; "Compare" shows it again later."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    expect(heading(page)).to_have_text("Overview")
    take = page.get_by_role("button", name="Take a snapshot")
    take.click()
    # Nothing to compare with yet: the overview again, now with the snapshot's totals.
    expect(page.locator("main")).to_contain_text("Snapshot:")
    expect(heading(page)).to_have_text("Overview")

    shop.order(300)
    take.click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    suspect = page.locator("main p", has_text=re.compile(f"^{re.escape(LEAKING_TYPE)} ×"))
    expect(suspect.first).to_be_visible()
    expect(page.locator("main p.path").first).to_contain_text("ORDERS")
    nothing_injected(page)

    page.get_by_role("link", name="Compare").click()
    expect(page).to_have_url(re.compile(r"#/diff$"))
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    expect(page.locator("main pre")).to_contain_text(LEAKING_TYPE)
    shoot(page, screenshots, "diff")
    page.get_by_role("link", name="heaplens", exact=True).click()
    expect(heading(page)).to_have_text("Overview")
    nothing_injected(page)


def test_the_first_snapshot_taken_from_the_overview_shows_the_overview_again(page, serve_shop):
    """A first snapshot taken from the overview reached through its link (``#/``) ends on the
    overview, not on the "Taking a snapshot…" note."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url + "#/")
    expect(heading(page)).to_have_text("Overview")
    take_snapshot(page)
    expect(heading(page)).to_have_text("Overview")


def test_the_overview_link_leaves_the_comparison_a_snapshot_showed(page, serve_shop):
    """After a second snapshot shows the comparison, the address says so (``#/diff``) and the
    "heaplens" link goes back to the overview."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    take = take_snapshot(page)
    take.click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    expect(page).to_have_url(re.compile(r"#/diff$"))
    page.get_by_role("link", name="heaplens", exact=True).click()
    expect(heading(page)).to_have_text("Overview")


def not_wider_than_the_window(page):
    """Whether the page fits the window's width (no horizontal scrolling)."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"
    )


def test_hostile_names_from_the_heap_are_shown_as_text_and_never_run(page, serve_shop):
    """Type names, attribute names and dict keys made of markup, control characters, a lone
    surrogate, bytes that are not UTF-8 and 100,000 characters are shown literally (and cut) on the
    overview, the type and object pages and the comparison; nothing runs or is injected."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily()
    page.goto(shop.url)
    expect(heading(page)).to_have_text("Overview")
    take_snapshot(page)
    text = nothing_injected(page)
    assert SCRIPT_TYPE in text
    assert ATTRIBUTE in text  # in the other class's name

    # An order refers to an instance of the class named with a script, through .gift. The type's
    # page is reached by its link's address: the overview re-renders with every sample (0.2 s),
    # and on a busy machine a click landed on the row that had moved under it (CI: `cell`).
    page.goto(urljoin(page.url, type_link(page, LEAKING_TYPE).get_attribute("href")))
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    instance_rows(page).first.get_by_role("link").click()
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    order_page = page.url
    gift = section(page, "Referents").locator("tr", has_text="via its .gift attribute")
    expect(gift).to_contain_text(SCRIPT_TYPE)
    nothing_injected(page)
    gift.get_by_role("link").click()
    expect(heading(page)).to_contain_text(SCRIPT_TYPE)
    expect(page.locator("main p.path")).to_contain_text(SCRIPT_TYPE)
    # Its attribute is named with markup.
    expect(section(page, "Referents")).to_contain_text(f"via its .{ATTRIBUTE} attribute")
    nothing_injected(page)

    # The dict every order holds, whose keys are the hostile strings. (Back to the order by its
    # address: history.back() under load could return before the page followed it.)
    page.goto(order_page)
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    section(page, "Referents").locator("tr", has_text=".stash").get_by_role("link").click()
    expect(heading(page)).to_contain_text("dict")
    keys = section(page, "Referents")
    expect(keys).to_contain_text(f"['\ufffd{SCRIPT}']")  # the lone surrogate, replaced
    expect(keys).to_contain_text(f"['{ATTRIBUTE}']")
    expect(keys).to_contain_text(r"['\x00\x1b[31mred")  # control characters, escaped
    expect(keys).to_contain_text(r"[b'\xff\xfe<script>")  # bytes that are not UTF-8
    long_key = keys.locator("tr", has_text="['" + "L" * 100).first
    expect(long_key).to_contain_text("…")  # cut
    assert len(long_key.inner_text()) < 1000
    # ...and wrapped: a name with no space in it widens neither this page nor the page of the
    # object it leads to, whose retaining path lists it as a step (in a narrow window).
    page.set_viewport_size({"width": 600, "height": 900})
    assert not_wider_than_the_window(page)
    long_key.get_by_role("link").click()
    expect(page.locator("main ol li").last).to_be_visible()
    assert not_wider_than_the_window(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(order_page)
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    section(page, "Referents").locator("tr", has_text=".stash").get_by_role("link").click()
    expect(heading(page)).to_contain_text("dict")
    nothing_injected(page)

    shop.order(50)
    page.get_by_role("button", name="Take a snapshot").click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    expect(page.locator("main pre")).to_contain_text(SCRIPT)
    nothing_injected(page)

    # The class whose name holds a lone surrogate, a NUL and control characters has a page too.
    page.get_by_role("link", name="Compare").click()
    page.get_by_role("link", name="heaplens", exact=True).click()
    expect(heading(page)).to_have_text("Overview")
    page.locator("main a", has_text=ATTRIBUTE).click()
    expect(heading(page)).to_contain_text(ATTRIBUTE)
    expect(instance_rows(page).first).to_contain_text(ATTRIBUTE)
    nothing_injected(page)


def test_a_type_whose_name_holds_a_slash_opens_on_the_live_dashboard(page, serve_shop):
    """The class named ``<script>…</script>`` (a '/' in its name) has a type page live too."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    take_snapshot(page)
    type_link(page, SCRIPT_TYPE).click()
    expect(heading(page)).to_have_text(SCRIPT_TYPE)
    expect(instance_rows(page).first).to_contain_text(SCRIPT_TYPE)
    nothing_injected(page)


# Characters that reorder or hide the text around them: C0 controls (but the tab and newline of
# the page's own layout), DEL and C1 controls, and the bidirectional embeddings, overrides and
# isolates.
INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_control_and_bidi_characters_in_names_are_shown_escaped(page, serve_shop):
    """Names holding control characters or a right-to-left override are shown escaped (as
    Python's repr shows them), so they cannot disguise themselves or reorder the text beside
    them: on the overview and in the comparison."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    take = take_snapshot(page)
    assert INVISIBLE.findall(page.inner_text("main")) == []
    shop.order(20)
    take.click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    assert INVISIBLE.findall(page.inner_text("main")) == []


def test_a_page_opened_with_its_token_works_and_the_api_refuses_requests_without_it(
    page, serve_shop
):
    """A dashboard with a token: the page opened as ``?token=`` loads its data, its chart and
    takes snapshots; the token leaves the address bar and the history at once (it would stay in
    copied links and bookmarks) and lives on in a cookie the page's script cannot read, which
    a reload carries. Without the token the page and the API answer 401, with a wrong one 403."""
    shop = serve_shop(period=0.2, token="s3cret")
    shop.leak_steadily(rounds=2)
    page.goto(shop.url)
    expect(heading(page)).to_have_text("Overview")
    assert "token" not in page.url and page.url.startswith(shop.root)
    assert "s3cret" not in page.evaluate("() => document.cookie"), "the cookie is HttpOnly"
    [cookie] = page.context.cookies()
    assert cookie["name"] == "heaplens_token" and cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict" and cookie["path"] == MOUNT
    expect(type_link(page, LEAKING_TYPE)).to_be_visible()
    wait_for_image(page, "main img.chart")
    take_snapshot(page)
    type_link(page, LEAKING_TYPE).click()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    nothing_injected(page)
    page.reload()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    assert page.evaluate("() => fetch('api/overview').then((r) => r.status)") == 200
    page.go_back()
    assert "token" not in page.url, "the history entry lost the token too"

    # Another browser, with neither the cookie nor the token.
    stranger = page.context.browser.new_context()
    try:
        assert stranger.request.get(shop.root + "api/info").status == 401
        assert stranger.request.get(shop.root).status == 401
        wrong = {"X-HeapLens-Token": "guess"}
        assert stranger.request.get(shop.root + "api/info", headers=wrong).status == 403
        right = {"X-HeapLens-Token": "s3cret"}
        assert stranger.request.get(shop.root + "api/info", headers=right).status == 200
        other = stranger.new_page()
        other.goto(shop.root)
        assert other.evaluate("() => fetch('api/overview').then((r) => r.status)") == 401
    finally:
        stranger.close()


def test_the_offline_viewer_shows_a_snapshot_file(page, leaky_snapshot, serve_file, screenshots):
    """``heaplens serve FILE.hlsnap``: the same page, read-only (no snapshot button), its table the
    snapshot's census; the leaking type leads to an instance and its retaining path, and the
    file's hostile names are shown as text."""
    viewer = serve_file(leaky_snapshot)
    page.goto(viewer.url)
    expect(heading(page)).to_have_text("Overview")
    expect(page.locator("#process")).to_contain_text("snapshot file, read-only")
    expect(page.get_by_role("button", name="Take a snapshot")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No sample history")
    expect(type_link(page, LEAKING_TYPE)).to_be_visible()
    # Without a history, the snapshot's report: the biggest retainer is the list of orders,
    # with the path that holds it, and a link to it.
    retainers = page.locator("main table").first
    expect(page.locator("main h2").first).to_have_text("Biggest retainers")
    expect(retainers).to_contain_text("['ORDERS']")
    expect(page.locator("main")).to_contain_text("No unreachable objects")
    text = nothing_injected(page)
    assert SCRIPT_TYPE in text
    shoot(page, screenshots, "offline-overview")

    # The type named with a script (a '/' in its name) has its page.
    type_link(page, SCRIPT_TYPE).click()
    expect(heading(page)).to_have_text(SCRIPT_TYPE)
    expect(instance_rows(page).first).to_contain_text(SCRIPT_TYPE)
    nothing_injected(page)
    page.go_back()

    type_link(page, LEAKING_TYPE).click()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    expect(page.locator("main p").nth(0)).to_contain_text("2,000 objects")
    # What holds them comes before the 2,000 rows: one group, with its path.
    held_by = page.locator("main table").first
    expect(held_by).to_contain_text("2,000")
    expect(held_by).to_contain_text("['ORDERS']")
    instance_rows(page).first.get_by_role("link").click()
    expect(page.locator("main p.path")).to_contain_text(f"module {SHOP}")
    expect(page.locator("main p.path")).to_contain_text("['ORDERS']")
    wait_for_image(page, "main img.picture")
    shoot(page, screenshots, "offline-object")
    nothing_injected(page)


def test_an_attached_process_shows_its_report_and_what_holds_its_leak(
    page, leaky_server, viewers, screenshots, tmp_path
):
    """``heaplens attach PID --serve``: the page of a running process's snapshot leads with its
    report (the dict of sessions among the biggest retainers, with its path), and the leaking
    type's page says what holds its instances; the process goes on serving."""
    server, url = leaky_server
    for _ in range(300):
        with urllib.request.urlopen(url + "session", timeout=30) as response:
            response.read()
    viewer = viewers("attach", server.pid, "--snapshot", tmp_path / "s.hlsnap", "--serve", "0")
    page.goto(viewer.url)
    expect(heading(page)).to_have_text("Overview")
    expect(page.locator("#process")).to_contain_text(f"pid {server.pid}")
    expect(page.locator("main h2").first).to_have_text("Biggest retainers")
    retainers = page.locator("main table").first
    expect(retainers).to_contain_text("module leaky_wsgi_app -> .__dict__['SESSIONS'] -> dict")
    shoot(page, screenshots, "attach-report")
    type_link(page, "leaky_wsgi_app.Session").click()
    expect(heading(page)).to_have_text("leaky_wsgi_app.Session")
    held_by = section(page, "Held by").locator("tbody tr").first
    expect(held_by).to_contain_text("['SESSIONS']")
    expect(held_by.locator("td").first).to_have_text("300")
    nothing_injected(page)
    with urllib.request.urlopen(url + "session", timeout=30) as response:
        assert response.read().startswith(b"hello ")


def test_two_snapshot_files_are_compared_on_the_page(page, leaky_pair, serve_file, screenshots):
    """``heaplens serve BEFORE AFTER``: the read-only page of the later file offers Compare,
    which names the leak (1,000 orders more) and the path that holds it."""
    before, after = leaky_pair
    viewer = serve_file(after, before)  # heaplens serve --port 0 BEFORE AFTER
    page.goto(viewer.url)
    expect(heading(page)).to_have_text("Overview")
    expect(page.locator("#process")).to_contain_text("after.hlsnap")
    page.get_by_role("link", name="Compare", exact=True).click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    main = page.locator("main")
    expect(main).to_contain_text(LEAKING_TYPE + " ×1,000")
    expect(main).to_contain_text("['ORDERS']")
    shoot(page, screenshots, "offline-compare")
    nothing_injected(page)


def test_endpoints_are_ranked_by_what_their_requests_leave_behind(page, serve_shop, screenshots):
    """With ``trace_every=1`` the overview ranks the shop's endpoints: GET /order, which leaks
    an order (and the hostile objects it holds) per request, above GET /health, which leaves
    nothing; each type left behind links to its page."""
    shop = serve_shop(period=0.2, trace_every=1)
    # Each order request leaks 10 orders (30 objects): werkzeug's thread per request makes each
    # trace count a thread's objects coming and going, a noise of a few objects per request on
    # either endpoint, which a leak of 3 objects per request (one order) did not always exceed.
    for _ in range(30):
        shop.order(items=10)
        shop.health()
    page.goto(shop.url)
    table = section(page, "Endpoints")
    rows = table.locator("tbody tr")
    expect(rows.first.locator("td").first).to_have_text("GET /order")
    expect(rows.first).to_contain_text(LEAKING_TYPE)
    # (The browser's own GET /favicon.ico, a 404 from the shop, may be listed too.)
    health = rows.filter(has_text="GET /health")
    expect(health).to_have_count(1)
    expect(health).not_to_contain_text(LEAKING_TYPE)
    nothing_injected(page)
    table.screenshot(path=str(screenshots / "endpoints.png"))
    rows.first.get_by_role("link", name=LEAKING_TYPE, exact=True).click()
    expect(heading(page)).to_have_text(LEAKING_TYPE)
    nothing_injected(page)

    # Once there is a snapshot, the row says what holds what it leaves behind, and its link
    # goes to that holder, whose page shows the path from the module global.
    page.get_by_role("link", name="heaplens", exact=True).click()
    take_snapshot(page)
    row = section(page, "Endpoints").locator("tbody tr").first
    expect(row.locator("td").first).to_have_text("GET /order")
    holder = row.locator("td").last
    expect(holder).to_contain_text("['ORDERS']")
    expect(health).not_to_contain_text("['ORDERS']")
    holder.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#/object/[0-9]+$"))
    expect(heading(page)).to_contain_text("list")
    expect(page.locator("main p.path")).to_contain_text(f"module {SHOP}")
    expect(page.locator("main p.path")).to_contain_text("['ORDERS']")
    nothing_injected(page)


def test_every_page_fits_a_phones_width(page, serve_shop, screenshots):
    """At a phone's width (390 px) no page scrolls sideways: the overview with its verdict, a
    type page with what holds its instances, an object page with its retaining path, and the
    comparison. Wide tables scroll inside their own box."""
    shop = serve_shop(period=0.2)
    shop.leak_steadily(rounds=2)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(shop.url)
    expect(heading(page)).to_have_text("Overview")
    take_snapshot(page)
    assert not_wider_than_the_window(page), "overview"
    shoot(page, screenshots, "phone-overview")
    page.goto(urljoin(page.url, type_link(page, LEAKING_TYPE).get_attribute("href")))
    expect(heading(page)).to_contain_text(LEAKING_TYPE)
    expect(instance_rows(page).first).to_be_visible()
    assert not_wider_than_the_window(page), "type page"
    instance_rows(page).first.get_by_role("link").first.click()
    expect(page.locator("main p.path")).to_be_visible()
    assert not_wider_than_the_window(page), "object page"
    page.goto(shop.url)
    expect(heading(page)).to_have_text("Overview")
    shop.leak_steadily(rounds=1)
    page.get_by_role("button", name="Take a snapshot").click()
    expect(heading(page)).to_have_text("Compared with the previous snapshot")
    assert not_wider_than_the_window(page), "comparison"
    nothing_injected(page)
