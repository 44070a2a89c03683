// MixBridge review page. Plain JavaScript, no build step, nothing loaded from elsewhere.
// The page decides nothing: every button sends an action to the server, which runs it through the
// same review state and session core as the OSC surface; the page redraws from the server's snapshot
// (server-sent events) and keeps only what is local to it: the selection and the player.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TAGS = { ai: "AI", hybrid: "hybrid", manual: "manual", untouched: "untouched" };
  const APPLY = { applied: "applied to REAPER", proposed: "proposed (no DAW)", held: "held for your review",
    queued: "queued: REAPER unreachable", failed: "not applied", none: "nothing applied yet" };
  let state = null;
  let selected = null; // suggestion id
  const entries = new Map(); // render key -> entry (from POST api/render / GET api/render/<key>)
  const player = { side: "a", playing: false, wantPlay: false, want: null, urls: null, message: "" };

  // --- small helpers -----------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "data") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function words(code) { return String(code || "").replace(/[_+]/g, " "); }

  function setStatus(text, error) {
    const s = $("status");
    s.textContent = text || "";
    s.classList.toggle("error", Boolean(error) || /^E_[A-Z_]+:/.test(text || ""));
  }

  async function send(path, body) {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      credentials: "same-origin", cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
    return data;
  }

  function act(action, extra) {
    if (!state) return;
    setStatus(`${words(action)}…`);
    send("api/action", Object.assign({ action, plan: state.plan.id }, extra || {}))
      .catch((e) => setStatus(`${action} not sent: ${e.message}`, true));
  }

  // --- the plan -----------------------------------------------------------------------------------

  function allSuggestions() {
    if (!state) return [];
    const out = [];
    for (const t of state.tracks) for (const s of t.suggestions) out.push({ s, t });
    return out;
  }

  function current() { return allSuggestions().find((x) => x.s.id === selected) || null; }

  function select(id, focus) {
    selected = id;
    for (const li of document.querySelectorAll(".sugg")) {
      const on = li.dataset.id === id;
      li.setAttribute("aria-current", on ? "true" : "false");
      li.tabIndex = on ? 0 : -1;
      if (on && focus) { li.focus(); li.scrollIntoView({ block: "nearest" }); }
    }
    describeHearing();
  }

  function move(delta) {
    const list = allSuggestions();
    if (!list.length) return;
    let k = list.findIndex((x) => x.s.id === selected);
    k = k < 0 ? 0 : Math.min(list.length - 1, Math.max(0, k + delta));
    select(list[k].s.id, true);
  }

  // --- drawing --------------------------------------------------------------------------------------

  function fmt(v, unit) { return v === null || v === undefined ? "n/a" : `${v.toFixed(1)} ${unit}`; }

  function suggestionItem(t, s) {
    const label = `${t.name}, ${words(s.code)}`;
    const head = el("div", { class: "head" },
      el("span", { class: "code", text: words(s.code) }),
      el("span", { class: `state state-${s.state}`, text: s.state }),
      s.confidence !== null ? el("span", { class: "meta", text: `confidence ${Math.round(s.confidence * 100)}%` }) : null);
    const body = el("div", { class: "body" }, head, el("p", { class: "why", text: s.why }));
    if (s.moves.length) body.append(el("ul", { class: "moves", "aria-label": "Moves" }, ...s.moves.map((m) => el("li", { text: m }))));
    if (s.predicted.length) {
      body.append(el("ul", { class: "predicted", "aria-label": "Predicted effect" },
        ...s.predicted.map((p) => el("li", { text: `predicted: ${p}` }))));
    }
    if (s.evidence.length) body.append(el("p", { class: "evidence", text: s.evidence.map(([k, v]) => `${k}: ${v}`).join(" · ") }));
    const buttons = el("div", { class: "buttons" },
      el("button", { type: "button", class: "accept", "aria-label": `Accept: ${label}`, disabled: s.state === "accepted" || !s.has_moves,
        data: { focusKey: `accept:${s.id}` }, onclick: (e) => { e.stopPropagation(); select(s.id); act("accept", { id: s.id }); } }, "Accept"),
      el("button", { type: "button", class: "reject", "aria-label": `Reject: ${label}`, disabled: s.state === "rejected",
        data: { focusKey: `reject:${s.id}` }, onclick: (e) => { e.stopPropagation(); select(s.id); act("reject", { id: s.id }); } }, "Reject"));
    return el("li", { class: "sugg", tabindex: s.id === selected ? 0 : -1, "aria-current": s.id === selected ? "true" : "false",
      "aria-label": `${label}: ${s.state}. ${s.why}`, data: { id: s.id, focusKey: `s:${s.id}` },
      onclick: () => select(s.id) }, body, buttons);
  }

  function trackSection(t) {
    const headingId = `track-${t.slot}`;
    const facts = [t.role, t.lufs !== null ? `${t.lufs.toFixed(1)} LUFS` : null,
      t.target_lufs !== null ? `target ${fmt(t.target_lufs, "LUFS")}` : null,
      t.predicted_lufs !== null ? `predicted ${fmt(t.predicted_lufs, "LUFS")}` : null,
      `${t.pending} pending`].filter(Boolean).join(" · ");
    const pending = t.suggestions.some((s) => s.state === "pending");
    const header = el("header", {},
      el("h2", { id: headingId, text: t.name }),
      el("span", { class: `tag tag-${t.provenance}`, text: TAGS[t.provenance] || t.provenance, title: `provenance: ${t.provenance}`,
        data: { tag: t.provenance } }),
      el("span", { class: "facts", text: facts }),
      t.suggestions.length ? el("div", { class: "bulk" },
        el("button", { type: "button", class: "accept", disabled: !pending, "aria-label": `Accept the pending suggestions on ${t.name}`,
          data: { focusKey: `taccept:${t.slot}` }, onclick: () => act("accept_track", { slot: t.slot }) }, "Accept track"),
        el("button", { type: "button", class: "reject", "aria-label": `Reject every suggestion on ${t.name}`,
          data: { focusKey: `treject:${t.slot}` }, onclick: () => act("reject_track", { slot: t.slot }) }, "Reject track")) : null);
    const section = el("section", { class: "track", "aria-labelledby": headingId, data: { track: t.name } }, header);
    if (t.suggestions.length) section.append(el("ol", { class: "suggestions" }, ...t.suggestions.map((s) => suggestionItem(t, s))));
    if (t.observations.length) {
      section.append(el("ul", { class: "observations", "aria-label": `Also noticed on ${t.name}` },
        ...t.observations.map((f) => el("li", { text: f.message }))));
    }
    return section;
  }

  function draw() {
    const main = $("tracks");
    const active = document.activeElement;
    const focusKey = active && main.contains(active) ? active.dataset.focusKey : null;
    const sections = state.tracks.map(trackSection);
    if (state.mix_findings.length) {
      sections.push(el("section", { class: "track", "aria-label": "The mix" }, el("header", {}, el("h2", { text: "Mix" })),
        el("ul", { class: "observations" }, ...state.mix_findings.map((f) => el("li", { text: f.message })))));
    }
    if (!sections.length) sections.push(el("p", { class: "empty", text: "No tracks in this plan." }));
    main.replaceChildren(...sections);
    main.setAttribute("aria-busy", "false");
    if (focusKey) {
      const again = [...main.querySelectorAll("[data-focus-key]")].find((n) => n.dataset.focusKey === focusKey && !n.disabled);
      (again || main.querySelector(`.sugg[aria-current="true"]`) || main).focus({ preventScroll: true });
    }
  }

  function drawControls() {
    const p = state.pass;
    const bits = [p ? `pass ${p.number}` : "no pass yet", `plan ${state.plan.id || "-"}`, `target ${state.target}`,
      p && p.apply ? APPLY[p.apply] || p.apply : null, `${state.pending} pending`];
    $("pass").textContent = bits.filter(Boolean).join(" · ");
    const ab = $("ab");
    $("ab-state").textContent = state.ab === "A" ? "A (pre-AI)" : "B (AI)";
    ab.setAttribute("aria-pressed", state.ab === "A" ? "true" : "false");
    ab.setAttribute("aria-label", `REAPER A/B: playing ${state.ab === "A" ? "A, the pre-AI mix" : "B, the AI mix"}; press to switch`);
    const amount = $("amount");
    amount.disabled = !state.can_replan;
    if (document.activeElement !== amount) {
      amount.value = String(state.amount);
      $("amount-value").textContent = `${Math.round(state.amount * 100)}%`;
    }
    $("notes-link").hidden = !state.notes;
    setStatus(state.actions.done < state.actions.queued ? "working…" : state.status);
    $("hear").hidden = !state.hear;
  }

  function apply(next) {
    state = next;
    const list = allSuggestions();
    if (!list.some((x) => x.s.id === selected)) {
      const first = list.find((x) => x.s.state === "pending") || list[0];
      selected = first ? first.s.id : null;
    }
    drawControls();
    draw();
    for (const r of state.renders) {
      const known = entries.get(r.key);
      if (known && known.status !== r.status) refreshEntry(r.key);
    }
    describeHearing();
    if (player.want) prepare(false);
  }

  // --- hear it: level-matched before/after, rendered offline for a plan state -----------------------------

  function scope() { return document.querySelector('input[name="scope"]:checked').value; }

  function proposal() {
    const ids = new Set(state ? state.accepted : []);
    const cur = current();
    if ($("preview").checked && cur && cur.s.has_moves) ids.add(cur.s.id);
    return [...ids].sort();
  }

  function wanted() {
    if (!state || !state.hear) return null;
    const ids = proposal();
    const cur = current();
    const sc = scope();
    if (sc === "mix") return { sc, a: { ids, file: "mix_before.wav" }, b: { ids, file: "mix_after.wav" }, track: null };
    if (!cur) return { sc, error: "select a suggestion of a track first" };
    const mine = new Set(cur.t.suggestions.map((s) => s.id));
    if (sc === "context") {
      return { sc, track: cur.t.name, a: { ids: ids.filter((i) => !mine.has(i)), file: "mix_after.wav" }, b: { ids, file: "mix_after.wav" } };
    }
    return { sc, track: cur.t.name, a: { ids, stem: "source" }, b: { ids, stem: "processed" } };
  }

  function describeHearing() {
    const w = wanted();
    const cur = current();
    let text = "Select a suggestion (j/k), then play (space).";
    if (w && !w.error) {
      const extra = cur && $("preview").checked && !state.accepted.includes(cur.s.id) && cur.s.has_moves
        ? ` Previewing ${cur.t.name}: ${words(cur.s.code)}, not accepted yet.` : "";
      text = { mix: "The mix as bounced (before) and with the accepted suggestions (after), at the same loudness.",
               context: `${w.track} in the mix: without (before) and with (after) its suggestions.`,
               alone: `${w.track} alone: as bounced (before) and processed (after), at the same loudness.` }[w.sc] + extra;
    } else if (w && w.error) text = w.error;
    $("hear-what").textContent = text;
  }

  async function ensure(ids) {
    const body = await send("api/render", { plan: state.plan.id, ids });
    entries.set(body.key, body);
    return body;
  }

  async function refreshEntry(key) {
    try {
      const r = await fetch(`api/render/${key}`, { cache: "no-store" });
      if (r.ok) entries.set(key, await r.json());
    } catch (e) { /* the next event retries */ }
    if (player.want) prepare(false);
  }

  function urlOf(entry, side, track) {
    if (!entry || entry.status !== "ready") return null;
    if (side.file) return entry.files.includes(side.file) ? `audio/${entry.key}/${side.file}` : "";
    const stem = entry.stems.find((s) => s.track === track && s.status === "processed");
    return stem ? `audio/${entry.key}/${stem[side.stem]}` : "";
  }

  async function prepare(fresh) {
    const w = wanted();
    if (!w) return;
    if (w.error) { playerMessage(w.error); return; }
    const sig = JSON.stringify([w.sc, w.track, w.a, w.b, state.plan.id]);
    if (fresh || !player.want || player.want.sig !== sig) {
      player.want = { sig, w, keys: {} };
      try {
        for (const side of ["a", "b"]) player.want.keys[side] = (await ensure(w[side].ids)).key;
      } catch (e) { playerMessage(`cannot render: ${e.message}`); player.want = null; return; }
    }
    const want = player.want;
    if (!want || want.sig !== sig) return;
    const ea = entries.get(want.keys.a), eb = entries.get(want.keys.b);
    const failed = [ea, eb].find((e) => e && e.status === "failed");
    if (failed) { playerMessage(`render failed: ${failed.error}`); return; }
    const ua = urlOf(ea, w.a, w.track), ub = urlOf(eb, w.b, w.track);
    if (ua === null || ub === null) { playerMessage("rendering…"); return; }
    if (!ua || !ub) { playerMessage("nothing accepted or previewed changes this track: before and after are the same"); return; }
    const a = $("audio-a"), b = $("audio-b");
    const changed = !a.src.endsWith(ua) || !b.src.endsWith(ub);
    if (changed) {
      const at = activeAudio().currentTime || 0;
      a.src = ua; b.src = ub;
      a.currentTime = at; b.currentTime = at;
    }
    const m = eb && eb.match_gain_db;
    playerMessage(w.sc === "alone" ? "ready: level-matched to the stem as bounced"
      : `ready: level-matched (after ${m !== null && m !== undefined ? (m >= 0 ? "+" : "") + m.toFixed(1) + " dB" : "matched"})`);
    if (player.wantPlay) startPlaying();
  }

  function playerMessage(text) { player.message = text; $("player-state").textContent = text; }
  function activeAudio() { return $(player.side === "a" ? "audio-a" : "audio-b"); }
  function otherAudio() { return $(player.side === "a" ? "audio-b" : "audio-a"); }

  function startPlaying() {
    player.wantPlay = false;
    const cur = activeAudio();
    otherAudio().pause();
    player.playing = true;
    drawPlayer();
    playing(cur);
  }

  function playing(audio) {
    // A play() cut short by a pause() (a flip, a new choice) is no failure; only the side heard counts.
    audio.play().catch((e) => {
      if (e.name === "AbortError" || audio !== activeAudio()) return;
      player.playing = false;
      drawPlayer();
      playerMessage(`cannot play: ${e.message}`);
    });
  }

  function togglePlay() {
    if (player.playing) {
      activeAudio().pause(); otherAudio().pause();
      player.playing = false; player.wantPlay = false; drawPlayer();
      return;
    }
    player.wantPlay = true;
    prepare(false);
  }

  function flip() {
    const from = activeAudio();
    player.side = player.side === "a" ? "b" : "a";
    const to = activeAudio();
    if (to.src) {
      try { to.currentTime = from.currentTime; } catch (e) { /* not seekable yet */ }
    }
    if (player.playing) { from.pause(); playing(to); }
    drawPlayer();
  }

  function drawPlayer() {
    $("side").textContent = player.side === "a" ? "before" : "after";
    $("flip").setAttribute("aria-pressed", player.side === "b" ? "true" : "false");
    $("play").setAttribute("aria-pressed", player.playing ? "true" : "false");
    $("play").firstChild.textContent = player.playing ? "Pause " : "Play ";
  }

  function stopForNewChoice() {
    if (player.playing) { activeAudio().pause(); player.playing = false; player.wantPlay = true; }
    player.want = null;
    describeHearing();
    drawPlayer();
    if (player.wantPlay) prepare(true);
  }

  // --- keyboard -------------------------------------------------------------------------------------------

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const help = $("help");
    if (help.open) return;
    const t = e.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (typing && !(t.type === "checkbox" || t.type === "radio") ) return;
    const cur = current();
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": if (cur) act("accept", { id: cur.s.id }); break;
      case "r": if (cur) act("reject", { id: cur.s.id }); break;
      case "A": if (cur) act("accept_track", { slot: cur.t.slot }); break;
      case "R": if (cur) act("reject_track", { slot: cur.t.slot }); break;
      case "b": flip(); break;
      case "B": act("ab"); break;
      case "m": case "c": case "l":
        document.querySelector(`input[name="scope"][value="${{ m: "mix", c: "context", l: "alone" }[e.key]}"]`).checked = true;
        stopForNewChoice(); break;
      case "?": help.showModal(); break;
      case " ":
        if (t && (t.tagName === "BUTTON" || t.tagName === "A" || typing)) return; // their own space
        togglePlay(); break;
      default: return;
    }
    e.preventDefault();
  }

  // --- wiring -----------------------------------------------------------------------------------------

  function connect() {
    const events = new EventSource("events");
    events.addEventListener("state", (e) => apply(JSON.parse(e.data)));
    events.addEventListener("open", () => { if (state) drawControls(); });
    events.addEventListener("error", () => { $("pass").textContent = "connection lost: reconnecting…"; });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("ab").addEventListener("click", () => act("ab"));
    $("refresh").addEventListener("click", () => act("refresh"));
    $("revert").addEventListener("click", () => act("revert"));
    const amount = $("amount");
    amount.addEventListener("input", () => { $("amount-value").textContent = `${Math.round(amount.value * 100)}%`; });
    amount.addEventListener("change", () => act("amount", { value: Number(amount.value) }));
    $("play").addEventListener("click", togglePlay);
    $("flip").addEventListener("click", flip);
    $("preview").addEventListener("change", stopForNewChoice);
    for (const r of document.querySelectorAll('input[name="scope"]')) r.addEventListener("change", stopForNewChoice);
    $("help-open").addEventListener("click", () => $("help").showModal());
    for (const id of ["audio-a", "audio-b"]) {
      $(id).addEventListener("error", () => playerMessage("the browser cannot play this audio"));
    }
    document.addEventListener("keydown", onKey);
    drawPlayer();
    connect();
  });
})();
