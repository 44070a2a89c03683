"""The review page end to end in a real browser (issue 16): Debian's Chromium driven by Selenium (headless)
against ``mixbridge watch --review-page`` on the REAPER simulator as a real process (reapy target).

One simulator, one watcher and one browser serve the module's tests in turn (a module fixture); each
test asks the :class:`Review` for the step it needs, and a step runs its predecessors first, so any single
test also runs alone.  Every wait is a condition with a deadline (:func:`tests.conftest.wait_until`).

The session: five stems of the synthesised session (:func:`bridge.synth.default_session`, 6 s); Keys is
planted 9 dB too hot (a fader move on Keys, nothing else); the other suggestions (EQ cuts, a polarity
flip) are taken from the plan as it comes.
"""
from __future__ import annotations

import dataclasses
import io
import shutil
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.console import Console
from bridge.daw import mapping as m
from bridge.settings import ReviewPageOptions
from bridge.synth import default_session, write_session
from bridge.watch import Watcher
from tests.conftest import wait_until, watch_settings
from tests.reaper_sim.control import ControlClient
from tests.reaper_sim.fixtures import running_sim
from tests.reaper_sim.render import DEFAULT_SUBDIR
from tests.test_loop_e2e import FAST, KEYS_PRE_AI_VOL, ai_fx, guid, planned, track_state

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
pytestmark = [pytest.mark.allow_leaks,
              pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                 reason="chromium and chromium-driver are not installed (apt-get install chromium "
                                        "chromium-driver)")]
STEMS = ("Kick", "Bass_DI", "Keys", "Guitar_Rhythm", "Lead_Vocal")
DURATION_S = 6.0
TIMEOUT_S = 30.0
PROVENANCE = "mixbridge/provenance"
#: Chromium's flags for a headless run as root in CI, offline, with nothing but the page.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio")
DESKTOP, PHONE = (1280, 900), (390, 844)


def start_browser(profile: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def suggestion_of(doc: dict[str, Any], track: str, code: str) -> str:
    tp = next(t for t in doc["tracks"] if t["name"] == track)
    return next(s["id"] for s in tp["suggestions"] if s["code"] == code)


def other_suggestion(doc: dict[str, Any], *, not_on: tuple[str, ...] = ("Keys",), not_ids: tuple[str, ...] = ()) -> str:
    """A suggestion with moves on another track (the planted Keys fader move is the one accepted)."""
    return next(s["id"] for t in doc["tracks"] if t["name"] not in not_on for s in t["suggestions"]
                if s.get("has_moves", True) and s["id"] not in not_ids)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


class Review:
    """The simulator, the watcher with its review page, the browser, and the steps, each run once in order."""

    def __init__(self, root: Path, sim, watcher: Watcher, driver):
        self.root, self.sim, self.watcher, self.driver = root, sim, watcher, driver
        self.steps: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}

    # --- helpers --------------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return self.sim.control.dump()

    def history(self) -> list[str]:
        return [u["name"] for u in self.dump()["undo"]["history"]]

    def bounce(self) -> Any:
        w = self.watcher
        before = len(w.passes)
        outcome = ControlClient(self.sim.control_port, timeout_s=60.0).bounce()
        assert outcome["error"] is None, outcome
        assert w.wait_for(lambda: len(w.passes) > before or w.crashed is not None or w.errors, TIMEOUT_S)
        assert w.crashed is None and not w.errors, (w.crashed, w.errors)
        return w.passes[-1]

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def item(self, sid: str):
        """The page's list item of a suggestion (looked up by its data-id, never by a CSS-quoted id)."""
        return self.js("return [...document.querySelectorAll('.sugg')].find(n => n.dataset.id === arguments[0]) || null",
                       sid)

    def item_state(self, sid: str) -> str | None:
        return self.js("const n = [...document.querySelectorAll('.sugg')].find(n => n.dataset.id === arguments[0]);"
                       "return n ? n.querySelector('.state').textContent : null", sid)

    def tag(self, track: str) -> str | None:
        return self.js("const s = [...document.querySelectorAll('section.track')].find(n => n.dataset.track === arguments[0]);"
                       "return s ? s.querySelector('.tag').dataset.tag : null", track)

    def text(self, element_id: str) -> str:
        return self.js("return document.getElementById(arguments[0]).textContent", element_id)

    def key(self, keys: str) -> None:
        self.driver.find_element("css selector", "body").send_keys(keys)

    # --- the steps --------------------------------------------------------------------------------------

    def opened(self) -> dict[str, Any]:
        if "opened" not in self.steps:
            started = time.monotonic()
            record = self.bounce()
            assert record.state == "held", (record.state, record.error)
            self.driver.get(self.watcher.review_url)
            wait_until(lambda: self.js("return document.querySelectorAll('.sugg').length") > 0, TIMEOUT_S,
                       "the page to show the suggestions")
            self.steps["opened"] = {"record": record, "doc": record.plan_doc, "dump": self.dump()}
            self.seconds["first pass and page"] = time.monotonic() - started
        return self.steps["opened"]

    def accepted(self) -> dict[str, Any]:
        if "accepted" not in self.steps:
            opened = self.opened()
            started = time.monotonic()
            doc = opened["doc"]
            sid = suggestion_of(doc, "Keys", "too_loud")
            before = self.dump()
            self.js("arguments[0].scrollIntoView({block: 'center'})", self.item(sid))
            self.item(sid).find_element("css selector", "button.accept").click()
            keys_db = planned(doc, "Keys", "volume_db")
            want = KEYS_PRE_AI_VOL * m.db_to_fader_gain(keys_db)
            wait_until(lambda: abs(track_state(self.dump(), "Keys")["vol"] - want) < 1e-9, TIMEOUT_S,
                       "REAPER's Keys fader to move")
            wait_until(lambda: self.item_state(sid) == "accepted" and self.tag("Keys") == "ai", TIMEOUT_S,
                       "the page to show Keys accepted and AI")
            self.steps["accepted"] = {"sid": sid, "keys_db": keys_db, "before": before, "after": self.dump()}
            self.seconds["accept"] = time.monotonic() - started
        return self.steps["accepted"]

    def rejected(self) -> dict[str, Any]:
        if "rejected" not in self.steps:
            doc = self.opened()["doc"]
            self.accepted()
            sid = other_suggestion(doc)
            before = self.dump()
            self.item(sid).find_element("css selector", "button.reject").click()
            wait_until(lambda: self.item_state(sid) == "rejected", TIMEOUT_S, f"the page to show {sid} rejected")
            wait_until(lambda: self.watcher.controller.states()[sid] == "rejected", TIMEOUT_S, "the review state")
            self.steps["rejected"] = {"sid": sid, "before": before, "after": self.dump()}
        return self.steps["rejected"]

    def ab(self) -> dict[str, Any]:
        if "ab" not in self.steps:
            self.rejected()
            applied = self.dump()
            self.driver.find_element("id", "ab").click()
            wait_until(lambda: "A (pre-AI)" in self.text("ab-state"), TIMEOUT_S, "the page to show A")
            on_a = self.dump()
            self.driver.find_element("id", "ab").click()
            wait_until(lambda: "B (AI)" in self.text("ab-state"), TIMEOUT_S, "the page to show B")
            self.steps["ab"] = {"applied": applied, "a": on_a, "b": self.dump(),
                                "pressed": self.js("return document.getElementById('ab').getAttribute('aria-pressed')")}
        return self.steps["ab"]

    def manual(self) -> dict[str, Any]:
        if "manual" not in self.steps:
            self.ab()
            started = time.monotonic()
            self.sim.control.set_track("Keys", "D_VOL", 0.5)  # the producer pulls the fader by hand
            self.driver.find_element("id", "refresh").click()  # "Check REAPER"
            wait_until(lambda: self.tag("Keys") == "hybrid" and self.text("status").startswith("checked REAPER"),
                       TIMEOUT_S, "the page to show Keys hybrid")
            checked = {"status": self.text("status"), "dump": self.dump()}
            record = self.bounce()  # a new bounce: a new pass, shown live
            wait_until(lambda: self.text("pass").startswith(f"pass {record.number} "), TIMEOUT_S,
                       "the page to show the new pass")
            self.steps["manual"] = {"checked": checked, "record": record, "tag": self.tag("Keys"),
                                    "dump": self.dump()}
            self.seconds["manual change and re-bounce"] = time.monotonic() - started
        return self.steps["manual"]

    def heard(self) -> dict[str, Any]:
        if "heard" not in self.steps:
            self.manual()
            started = time.monotonic()
            doc = self.watcher.passes[-1].plan_doc
            # A move of the new pass that is not accepted: "hear it before you accept it".
            sid = other_suggestion(doc, not_on=(), not_ids=self.watcher.controller.accepted())
            self.item(sid).click()
            self.key(" ")
            audio = "const a = document.getElementById(arguments[0]); return [a.readyState, a.duration, a.paused, a.error && a.error.code, a.src]"
            wait_until(lambda: self.js(audio, "audio-a")[0] >= 1 and not self.js(audio, "audio-a")[2], TIMEOUT_S,
                       "the before mix to play")
            self.key("b")
            wait_until(lambda: not self.js(audio, "audio-b")[2] and self.js(audio, "audio-a")[2], TIMEOUT_S,
                       "the after mix to play instead")
            self.steps["heard"] = {"a": self.js(audio, "audio-a"), "b": self.js(audio, "audio-b"),
                                   "side": self.text("side"), "what": self.text("player-state"), "sid": sid}
            self.key(" ")
            self.seconds["render and play"] = time.monotonic() - started
        return self.steps["heard"]


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    started = time.monotonic()
    root = tmp_path_factory.mktemp("review_page")
    specs = [s for s in default_session() if s.name in STEMS]
    paths = write_session(root / "sources", specs, duration_s=DURATION_S)
    song = root / "song"
    stems = song / DEFAULT_SUBDIR
    stems.mkdir(parents=True)
    project = {"name": "Song.rpp", "path": str(song / "Song.rpp"),
               "tracks": [{"name": s.name, "guid": guid(i), "selected": True, "source": str(p),
                           "vol": KEYS_PRE_AI_VOL if s.name == "Keys" else 1.0}
                          for i, (s, p) in enumerate(zip(specs, paths), start=1)]}
    with running_sim(project, root / "sim") as sim:
        settings = dataclasses.replace(watch_settings(stems, target="reaper", web_port=sim.web_port, **FAST),
                                       page=ReviewPageOptions(enabled=True, port=0))
        watcher = Watcher(settings, console=Console(io.StringIO(), tty=False))
        driver = None
        try:
            watcher.start()
            driver = start_browser(Path(tempfile.mkdtemp(prefix="chromium-", dir=root)))
            r = Review(root, sim, watcher, driver)
            r.seconds["start"] = time.monotonic() - started
            yield r
            r.seconds["total"] = time.monotonic() - started
            print("\nreview page e2e seconds:", {k: round(v, 1) for k, v in r.seconds.items()})
        finally:
            if driver is not None:
                driver.quit()
            assert watcher.stop(15.0), "the watcher stopped cleanly"


# --- the page over the simulator -----------------------------------------------------------------------------

def test_the_page_shows_the_pass_held_for_review(review):
    step = review.opened()
    doc = step["doc"]
    shown = review.js("return [...document.querySelectorAll('.sugg')].map(n => n.dataset.id)")
    assert shown == [s["id"] for t in doc["tracks"] for s in t["suggestions"]], "every suggestion, in plan order"
    assert all(review.item_state(sid) == "pending" for sid in shown)
    assert {t["name"] for t in step["dump"]["tracks"] if t["ext"].get(PROVENANCE)} == set(), "REAPER untouched"
    assert "held for your review" in review.text("pass")
    keys = review.js("const s = [...document.querySelectorAll('section.track')].find(n => n.dataset.track === 'Keys');"
                     "return s.textContent")
    assert "too loud" in keys and "fader" in keys, "the why and the numbers of each suggestion"
    assert review.watcher.review_url.startswith("http://127.0.0.1:") and "/r/" in review.watcher.review_url


def test_accepting_one_suggestion_writes_exactly_that_move_as_one_undo_point(review):
    step = review.accepted()
    before, after = step["before"], step["after"]
    history = [u["name"] for u in after["undo"]["history"]]
    assert len(history) == len(before["undo"]["history"]) + 1, history[-3:]
    assert history[-1].startswith("MixBridge: AI pass") and history[-1].endswith("1 tracks")
    for b, a in zip(before["tracks"], after["tracks"]):
        if a["name"] == "Keys":
            assert a["vol"] != b["vol"] and a["ext"][PROVENANCE] == "ai"
            assert a["fx"] == b["fx"], "a fader move only"
            assert {k: a[k] for k in ("pan", "width")} == {k: b[k] for k in ("pan", "width")}
        else:
            assert a == b, f"{a['name']} was not touched"
    assert review.watcher.controller.accepted() == (step["sid"],)
    assert review.watcher.passes[-1].state == "applied", "the pass is recorded anew (its notes rewritten)"


def test_rejecting_a_suggestion_writes_nothing(review):
    step = review.rejected()
    assert step["after"]["undo"] == step["before"]["undo"]
    assert step["after"]["tracks"] == step["before"]["tracks"]
    assert all(ai_fx(t, name) is None for t in step["after"]["tracks"]
               for name in (m.AI_EQ_NAME, m.AI_COMP_NAME, m.AI_POLARITY_NAME))


def test_ab_from_the_page_toggles_reaper_level_matched_and_back(review):
    step = review.ab()
    applied, on_a, on_b = step["applied"], step["a"], step["b"]
    assert track_state(on_a, "Keys")["vol"] == pytest.approx(KEYS_PRE_AI_VOL), "A plays the pre-AI fader"
    assert on_a["master"]["vol"] != pytest.approx(applied["master"]["vol"]), "level-matched on the master"
    assert track_state(on_b, "Keys")["vol"] == pytest.approx(track_state(applied, "Keys")["vol"])
    assert on_b["master"]["vol"] == pytest.approx(applied["master"]["vol"])
    assert step["pressed"] == "false"


def test_a_manual_change_in_reaper_shows_up_as_hybrid_and_a_new_bounce_live(review):
    step = review.manual()
    checked = step["checked"]
    assert "1 manual change kept" in checked["status"], checked["status"]
    assert track_state(checked["dump"], "Keys")["vol"] == pytest.approx(0.5), "the producer's fader stays"
    assert track_state(checked["dump"], "Keys")["ext"][PROVENANCE] == "hybrid"
    assert step["record"].number == 2 and step["record"].provenance["Keys"] == "hybrid"
    assert step["tag"] == "hybrid" and track_state(step["dump"], "Keys")["vol"] == pytest.approx(0.5)


def test_hear_it_plays_level_matched_renders_in_the_browser(review):
    step = review.heard()
    a, b = step["a"], step["b"]
    assert a[3] is None and b[3] is None, "no media error: the browser decodes the WAV it was sent"
    assert a[1] == pytest.approx(DURATION_S, abs=0.05) and b[1] == pytest.approx(DURATION_S, abs=0.05)
    assert a[4].endswith("/mix_before.wav") and b[4].endswith("/mix_after.wav")
    assert step["side"] == "after" and step["what"].startswith("ready: level-matched")
    renders = review.watcher.review_page.state.renders
    (entry,) = [e for e in renders.entries() if b[4].split("/audio/")[1].startswith(e.key)]
    assert step["sid"] in entry.ids, "the previewed move is in what is heard"
    assert step["sid"] not in review.watcher.controller.accepted(), "without accepting it"
    assert review.watcher.review_page.counters["ranges"] > 0, "the browser read the audio with range requests"


def test_the_notes_link_to_the_page_and_the_page_to_the_notes(review):
    review.accepted()
    files = review.watcher.files[review.watcher.passes[-1].number]
    assert review.watcher.review_url in Path(files["notes"]).read_text(encoding="utf-8")
    link = review.driver.find_element("id", "notes-link")
    assert link.is_displayed() and link.get_attribute("href").endswith("/notes")
    main = review.driver.current_window_handle
    review.driver.get(link.get_attribute("href"))
    try:
        wait_until(lambda: "Mix notes" in review.driver.title, TIMEOUT_S, "the notes page")
        back = review.driver.find_element("link text", "review page").get_attribute("href")
        assert back == review.watcher.review_url
    finally:
        review.driver.switch_to.window(main)
        review.driver.get(review.watcher.review_url)
        wait_until(lambda: review.js("return document.querySelectorAll('.sugg').length") > 0, TIMEOUT_S, "the page")


# --- screenshots at desktop and phone width ------------------------------------------------------------------

MUST_SEE = ("#ab", "#amount", "#refresh", "#revert", "#status", "#notes-link", "section.track .tag",
            ".sugg button.accept", ".sugg button.reject", ".track .bulk button.accept", "#play", "#flip")


@pytest.mark.parametrize("width,height", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_show_every_control_within_the_width(review, width, height, tmp_path_factory):
    review.accepted()
    d = review.driver
    d.set_window_size(width, height)
    inner = wait_until(lambda: (w := review.js("return window.innerWidth")) <= width and w, TIMEOUT_S, "the resize")
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    png = shots / f"review-{width}x{height}.png"
    review.js("window.scrollTo(0, 0)")
    assert d.save_screenshot(str(png)) and png.stat().st_size > 10_000
    assert png_size(png)[0] == inner, "the screenshot is the page at that width"
    assert review.js("return document.documentElement.scrollWidth") <= inner, "no sideways scrolling"
    for selector in MUST_SEE:
        node = d.find_element("css selector", selector)
        review.js("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", node)
        box = node.rect
        assert node.is_displayed(), selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner + 0.5, (selector, box, inner)
        hit = review.js("const r = arguments[0].getBoundingClientRect();"
                        "const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                        "return at !== null && (at === arguments[0] || arguments[0].contains(at))", node)
        assert hit, f"{selector} is covered by something else at {width}px"
        if node.tag_name == "button":
            assert box["height"] >= 44 - 0.5, f"{selector}: a touch target of at least 44 px"
    d.save_screenshot(str(shots / f"review-{width}x{height}-scrolled.png"))
    d.set_window_size(*DESKTOP)


# --- keyboard and accessibility ----------------------------------------------------------------------------------

def test_keyboard_moves_and_decides_with_focus_visible(review):
    review.heard()
    d = review.driver
    review.js("window.scrollTo(0, 0)")
    first = review.js("return document.querySelector('.sugg').dataset.id")
    review.item(first).click()
    review.key("j")
    second = review.js("return document.activeElement.dataset.id")
    assert second and second != first, "j moves to the next suggestion and focuses it"
    assert review.js("return document.activeElement.getAttribute('aria-current')") == "true"
    outline = review.js("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "focus is visible"
    review.key("k")
    assert review.js("return document.activeElement.dataset.id") == first
    doc = review.watcher.passes[-1].plan_doc
    target = other_suggestion(doc, not_on=(), not_ids=(review.steps["heard"]["sid"],))
    review.item(target).click()
    review.key("r")
    wait_until(lambda: review.item_state(target) == "rejected", TIMEOUT_S, "r to reject the selected suggestion")
    labels = review.js("return [...document.querySelectorAll('.sugg button')].map(b => b.getAttribute('aria-label'))")
    assert all(label and (label.startswith("Accept: ") or label.startswith("Reject: ")) for label in labels)
    assert review.js("return document.getElementById('status').getAttribute('role')") == "status"
    review.key("?")
    assert review.js("return document.getElementById('help').open") is True
    d.find_element("css selector", "#help button").click()
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
