-- A stubbed `reaper` table for running MixBridge's ReaScripts under plain lua5.4.
--
-- Usage: lua5.4 tests/lua/harness.lua FIXTURE.lua SCRIPT.lua
--
-- FIXTURE.lua returns a table (written by tests/test_scripts.py):
--   { project_file = "/abs/Song.rpp", os = "Linux",
--     tracks = { {name=, guid=, selected=, D_VOL=, D_PAN=, D_WIDTH=, B_PHASE=, ext={key=value},
--                 fx={ {renamed=, enabled=} }} },
--     render = { RENDER_SETTINGS=, ..., RENDER_FILE=, ... },   -- the user's render settings
--     proj_ext = { ["mixbridge/render_dir"] = "..." },
--     ext_state = { ["mixbridge/requests"] = "..." },
--     sample_rate = 48000, render_error = "boom" (optional), skip_file = "Kick" (optional),
--     reply_at_tick = 3, reply_text = "now B" (optional: the bridge answering), max_ticks = 1000 }
--
-- Output, one record per line, tab-separated, for the Python side to assert on:
--   EVENT <what> ...      in the order things happened
--   STATE <what> ...      the final state
-- An unstubbed reaper.* function is an error (exit status 1), never a silent nil.

local fixture_path, script_path = arg[1], arg[2]
local F = dofile(fixture_path)

local function out(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]):gsub("[\t\n]", " ") end
  io.write(table.concat(parts, "\t"), "\n")
end

local clock = 1000.0
local ticks = 0
local deferred = {}
local ui_prevent = 0
local undo_depth = 0
local render = {}
for k, v in pairs(F.render or {}) do render[k] = v end
local ext_state = {}
for k, v in pairs(F.ext_state or {}) do ext_state[k] = v end
local persisted = {}
local proj_ext = F.proj_ext or {}

local tracks = {}
for i, t in ipairs(F.tracks or {}) do
  local track = { index = i, name = t.name or "", guid = t.guid or "", selected = t.selected or false,
                  values = { D_VOL = t.D_VOL or 1.0, D_PAN = t.D_PAN or 0.0,
                             D_WIDTH = t.D_WIDTH or 1.0, B_PHASE = t.B_PHASE or 0 },
                  ext = t.ext or {}, fx = {} }
  for j, fx in ipairs(t.fx or {}) do
    track.fx[j] = { renamed = fx.renamed or "", enabled = fx.enabled ~= false }
  end
  tracks[i] = track
end

local function selected()
  local list = {}
  for _, t in ipairs(tracks) do if t.selected then list[#list + 1] = t end end
  return list
end

local function file_name(name)
  -- What the stub's "REAPER" makes of $track: characters illegal in file names become "_".
  return (name:gsub('[/\\:*?"<>|]', "_"))
end

local function targets()
  local sel = selected()
  if render.RENDER_SETTINGS ~= 2 or render.RENDER_PATTERN ~= "$track" then return "" end
  local ext = render.RENDER_FORMAT == "evaw" and ".wav" or ".unknown"
  local paths = {}
  for i, t in ipairs(sel) do paths[i] = render.RENDER_FILE .. "/" .. file_name(t.name) .. ext end
  return table.concat(paths, ";")
end

local function wav_bytes(rate)
  -- A 44-byte PCM header with no frames: enough for the script's header reader.
  return "RIFF" .. string.pack("<I4", 36) .. "WAVE" .. "fmt " .. string.pack("<I4", 16)
      .. string.pack("<I2I2I4I4I2I2", 1, 2, rate, rate * 6, 6, 24) .. "data" .. string.pack("<I4", 0)
end

local function exists(path)
  local h = io.open(path, "rb")
  if h then h:close() return true end
  return false
end

local real_rename = os.rename
os.rename = function(from, to)
  out("EVENT", "rename", from, to, exists(from) and "from_exists" or "from_missing")
  return real_rename(from, to)
end

local function track_check(tr)
  assert(type(tr) == "table" and tr.values, "not a MediaTrack")
  return tr
end

local R = {}

function R.GetOS() return F.os or "Linux" end
function R.time_precise() return clock end
function R.EnumProjects(idx)
  assert(idx == -1 or idx == 0, "EnumProjects idx")
  return "project", F.project_file or ""
end
function R.GetProjExtState(proj, extname, key)
  local v = proj_ext[extname .. "/" .. key] or ""
  return #v, v
end
function R.RecursiveCreateDirectory(path, ignored)
  os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  out("EVENT", "mkdir", path)
  return 1
end
function R.CountSelectedTracks(proj) return #selected() end
function R.GetSelectedTrack(proj, i) return selected()[i + 1] end
function R.CountTracks(proj) return #tracks end
function R.GetTrack(proj, i) return tracks[i + 1] end
function R.GetTrackName(tr) tr = track_check(tr) return true, tr.name end
function R.GetSetMediaTrackInfo_String(tr, parm, value, set)
  tr = track_check(tr)
  if parm == "GUID" then assert(not set) return true, tr.guid end
  local key = parm:match("^P_EXT:(.+)$")
  assert(key and not set, "unstubbed GetSetMediaTrackInfo_String " .. parm)
  if tr.ext[key] == nil then return false, "" end
  return true, tr.ext[key]
end
function R.GetMediaTrackInfo_Value(tr, attr)
  tr = track_check(tr)
  assert(tr.values[attr] ~= nil, "unstubbed attr " .. attr)
  return tr.values[attr]
end
function R.SetMediaTrackInfo_Value(tr, attr, value)
  tr = track_check(tr)
  assert(tr.values[attr] ~= nil, "unstubbed attr " .. attr)
  out("EVENT", "set_track", tr.name, attr, string.format("%.17g", value))
  tr.values[attr] = value
  return true
end
function R.TrackFX_GetCount(tr) return #track_check(tr).fx end
function R.TrackFX_GetNamedConfigParm(tr, fx, parm)
  assert(parm == "renamed_name", "unstubbed named config " .. parm)
  local inst = track_check(tr).fx[fx + 1]
  if not inst then return false, "" end
  return true, inst.renamed
end
function R.TrackFX_GetEnabled(tr, fx) return track_check(tr).fx[fx + 1].enabled end
function R.TrackFX_SetEnabled(tr, fx, enabled)
  local inst = track_check(tr).fx[fx + 1]
  out("EVENT", "fx_enabled", tr.name, inst.renamed, tostring(enabled))
  inst.enabled = enabled
end
function R.GetSetProjectInfo(proj, key, value, set)
  assert(key:match("^RENDER_") or key == "PROJECT_SRATE", "unstubbed project info " .. key)
  if set then
    out("EVENT", "set_render", key, string.format("%.17g", value))
    render[key] = value
    return value
  end
  if key == "PROJECT_SRATE" then return F.sample_rate or 48000 end
  return render[key] or 0
end
function R.GetSetProjectInfo_String(proj, key, value, set)
  if key == "RENDER_TARGETS" then assert(not set) return true, targets() end
  assert(key == "RENDER_FILE" or key == "RENDER_PATTERN" or key == "RENDER_FORMAT",
         "unstubbed project info string " .. key)
  if set then
    out("EVENT", "set_render", key, value)
    render[key] = value
    return true, value
  end
  return true, render[key] or ""
end
function R.Main_OnCommand(command, flag)
  assert(command == 42230, "unstubbed action " .. tostring(command))
  -- What the render saw: settings, FX and track values at this moment.
  out("EVENT", "render_begin", render.RENDER_SETTINGS, render.RENDER_BOUNDSFLAG, render.RENDER_ADDTOPROJ,
      render.RENDER_FILE, render.RENDER_PATTERN, render.RENDER_FORMAT,
      exists(render.RENDER_FILE .. "/mixbridge-bounce.json") and "manifest_present" or "no_manifest")
  for _, t in ipairs(tracks) do
    for _, fx in ipairs(t.fx) do out("EVENT", "render_fx", t.name, fx.renamed, tostring(fx.enabled)) end
    for _, attr in ipairs({ "D_VOL", "D_PAN", "D_WIDTH", "B_PHASE" }) do
      out("EVENT", "render_value", t.name, attr, string.format("%.17g", t.values[attr]))
    end
  end
  if F.render_error then error(F.render_error) end
  for path in targets():gmatch("[^;]+") do
    if not (F.skip_file and path:find(F.skip_file, 1, true)) then
      local h = assert(io.open(path, "wb"))
      h:write(wav_bytes(F.sample_rate or 48000))
      h:close()
      out("EVENT", "wrote", path)
    end
  end
  out("EVENT", "render_end")
end
function R.Undo_BeginBlock2(proj) undo_depth = undo_depth + 1 out("EVENT", "undo_begin") end
function R.Undo_EndBlock2(proj, name, flags)
  undo_depth = undo_depth - 1
  out("EVENT", "undo_end", name, flags)
end
function R.PreventUIRefresh(n)
  ui_prevent = ui_prevent + n
  assert(ui_prevent >= 0, "PreventUIRefresh went negative")
end
function R.ShowConsoleMsg(msg) out("EVENT", "console", msg) end
function R.ShowMessageBox(msg, title, kind) out("EVENT", "message_box", title, msg) return 1 end
function R.SetExtState(section, key, value, persist)
  assert(not (persist and value:find("\n")), "newlines are not allowed with persist=true")
  out("EVENT", "set_ext", section .. "/" .. key, value, tostring(persist))
  ext_state[section .. "/" .. key] = value
  if persist then persisted[section .. "/" .. key] = value end
end
function R.GetExtState(section, key) return ext_state[section .. "/" .. key] or "" end
function R.defer(fn)
  assert(type(fn) == "function", "defer needs a function")
  deferred[#deferred + 1] = fn
end
function R.GetMousePosition() return 100, 200 end
function R.TrackCtl_SetToolTip(text, x, y, topmost) out("EVENT", "tooltip", text) end

reaper = setmetatable(R, { __index = function(_, name) error("unstubbed reaper." .. name, 2) end })

local ok, err = pcall(dofile, script_path)
if not ok then
  out("STATE", "script_error", err)
end

-- REAPER's defer loop: one tick per ~33 ms of simulated time.
local max_ticks = F.max_ticks or 1000
while #deferred > 0 do
  ticks = ticks + 1
  if ticks > max_ticks then out("STATE", "defer_runaway", ticks) break end
  clock = clock + 0.033
  if F.reply_at_tick and ticks == F.reply_at_tick then
    -- The bridge answers the newest request.
    local newest = (ext_state["mixbridge/requests"] or ""):match("(%d+) [%w_]+$")
    ext_state["mixbridge/reply"] = newest .. " " .. (F.reply_text or "done")
  end
  local batch = deferred
  deferred = {}
  for _, fn in ipairs(batch) do
    local fok, ferr = pcall(fn)
    if not fok then out("STATE", "script_error", ferr) end
  end
end

out("STATE", "ticks", ticks)
out("STATE", "ui_prevent", ui_prevent)
out("STATE", "undo_depth", undo_depth)
for _, key in ipairs({ "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_ADDTOPROJ", "RENDER_SRATE",
                       "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT" }) do
  local v = render[key]
  if type(v) == "number" then v = string.format("%.17g", v) end
  out("STATE", "render", key, v == nil and "nil" or v)
end
for _, t in ipairs(tracks) do
  for _, attr in ipairs({ "D_VOL", "D_PAN", "D_WIDTH", "B_PHASE" }) do
    out("STATE", "value", t.name, attr, string.format("%.17g", t.values[attr]))
  end
  for _, fx in ipairs(t.fx) do out("STATE", "fx", t.name, fx.renamed, tostring(fx.enabled)) end
end
local keys = {}
for k in pairs(ext_state) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  out("STATE", "ext", k, ext_state[k], persisted[k] ~= nil and "persisted" or "volatile")
end
