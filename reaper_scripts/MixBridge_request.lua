-- @noindex
-- MixBridge: shared code of the request scripts (Toggle A/B, Revert AI pass, Accept all pending).
--
-- Protocol (docs/scripts.md): the script appends "<seq> <command>" to the ExtState
-- mixbridge/requests (entries separated by ";", at most the last 16 kept, not persisted). The
-- running bridge (`mixbridge watch`) polls that key over REAPER's web interface
-- (GET/EXTSTATE/mixbridge/requests), handles each sequence number once and answers in
-- mixbridge/reply as "<seq> <text>". The script waits for that reply in a reaper.defer loop
-- bounded in time, so REAPER's UI never blocks, and shows it as a tooltip.

local Request = {}

Request.SECTION = "mixbridge"
Request.KEY = "requests"
Request.SEQ_KEY = "request_seq"   -- persisted, so numbers keep growing across REAPER restarts
Request.REPLY_KEY = "reply"
Request.MAX_KEPT = 16
Request.WAIT_S = 5.0              -- how long to wait for the bridge's reply
Request.TOOLTIP_S = 3.0           -- how long the reply stays on screen
Request.COMMANDS = { ab = "Toggle A/B", revert = "Revert AI pass", accept_all = "Accept all pending" }

--- "3 ab;4 revert" -> { {seq = 3, command = "ab"}, {seq = 4, command = "revert"} }
function Request.parse(text)
  local entries = {}
  for item in (text or ""):gmatch("[^;]+") do
    local seq, command = item:match("^%s*(%d+)%s+([%w_]+)%s*$")
    if seq then entries[#entries + 1] = { seq = tonumber(seq), command = command } end
  end
  return entries
end

function Request.format(entries)
  local parts = {}
  for i, e in ipairs(entries) do parts[i] = string.format("%d %s", e.seq, e.command) end
  return table.concat(parts, ";")
end

--- Append one request and keep only the newest MAX_KEPT.
function Request.append(text, seq, command)
  local entries = Request.parse(text)
  entries[#entries + 1] = { seq = seq, command = command }
  local first = math.max(1, #entries - Request.MAX_KEPT + 1)
  return Request.format(table.move(entries, first, #entries, 1, {}))
end

--- The next sequence number: above the persisted counter and above anything still queued.
function Request.next_seq()
  local seq = tonumber(reaper.GetExtState(Request.SECTION, Request.SEQ_KEY)) or 0
  for _, e in ipairs(Request.parse(reaper.GetExtState(Request.SECTION, Request.KEY))) do
    if e.seq > seq then seq = e.seq end
  end
  seq = math.floor(seq) + 1
  reaper.SetExtState(Request.SECTION, Request.SEQ_KEY, tostring(seq), true)
  return seq
end

local function show(text)
  local x, y = reaper.GetMousePosition()
  reaper.TrackCtl_SetToolTip(text, x + 12, y + 12, true)
end

--- Leave the request, then wait (deferred, bounded) for the bridge's reply and show it.
--- Returns the sequence number.
function Request.send(command)
  local label = Request.COMMANDS[command] or command
  local seq = Request.next_seq()
  local queued = reaper.GetExtState(Request.SECTION, Request.KEY)
  reaper.SetExtState(Request.SECTION, Request.KEY, Request.append(queued, seq, command), false)
  local started = reaper.time_precise()
  local shown_at = nil

  local function tick()
    local now = reaper.time_precise()
    if shown_at then
      if now - shown_at >= Request.TOOLTIP_S then
        reaper.TrackCtl_SetToolTip("", 0, 0, true)
        return
      end
      reaper.defer(tick)
      return
    end
    local reply = reaper.GetExtState(Request.SECTION, Request.REPLY_KEY)
    local reply_seq, text = reply:match("^(%d+) (.*)$")
    if tonumber(reply_seq) == seq then
      show("MixBridge: " .. text)
      shown_at = now
      reaper.defer(tick)
      return
    end
    if now - started >= Request.WAIT_S then
      reaper.ShowMessageBox(string.format(
        "MixBridge did not answer \"%s\" within %d s.\n\nIs `mixbridge watch` running, and is REAPER's "
        .. "web interface enabled (Preferences > Control/OSC/web)? The request stays queued; a bridge "
        .. "that starts later ignores it.", label, math.floor(Request.WAIT_S)), "MixBridge", 0)
      return
    end
    reaper.defer(tick)
  end

  reaper.defer(tick)
  return seq
end

return Request
