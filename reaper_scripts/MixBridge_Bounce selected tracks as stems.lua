-- @description MixBridge: Bounce selected tracks as stems
-- @version 0.1.0
-- @author MixBridge
-- @about
--   # MixBridge: Bounce selected tracks as stems
--
--   Renders every selected track as its own WAV stem, named after the track ($track), into the
--   folder `mixbridge watch` watches, then writes the bounce manifest `mixbridge-bounce.json`
--   (track GUID, name, file, sample rate, time of the bounce) as the completion signal.
--
--   * Folder: the project extstate `mixbridge/render_dir` if set (relative paths are relative to
--     the project folder), otherwise `<project folder>/MixBridge stems/`.
--   * It renders the *pre-AI* mix: for the length of the render it bypasses the FX the bridge added
--     ("AI EQ (MixBridge)", "AI Comp (MixBridge)", "AI Polarity (MixBridge)") and puts the track
--     values the bridge owns back to their pre-AI values (track key `P_EXT:mixbridge/pre_ai`), because
--     the bridge's suggestions are moves relative to the producer's own mix.
--   * It changes RENDER_SETTINGS, RENDER_BOUNDSFLAG, RENDER_ADDTOPROJ, RENDER_FILE, RENDER_PATTERN and
--     RENDER_FORMAT for the render and puts every one of them, the FX and the track values back
--     afterwards, also when the render fails.
--
--   See docs/scripts.md in the MixBridge repository.

-- Everything lives in one table so the test harness can load it; REAPER just runs main().
local Bounce = {}

Bounce.SECTION = "mixbridge"
Bounce.MANIFEST_NAME = "mixbridge-bounce.json"
Bounce.DEFAULT_SUBDIR = "MixBridge stems"
Bounce.TITLE = "MixBridge: Bounce selected tracks as stems"
-- "File: Render project, using the most recent render settings, auto-close render dialog":
-- it returns when the render is done (reaper.md 6), so the script can signal completion afterwards.
Bounce.RENDER_ACTION = 42230
Bounce.AI_FX = { ["AI EQ (MixBridge)"] = true, ["AI Comp (MixBridge)"] = true,
                 ["AI Polarity (MixBridge)"] = true }
-- Track values the bridge writes natively (bridge/daw/reapy_target.py TRACK_PARAMS), in a fixed order.
Bounce.OWNED_ATTRS = { "D_VOL", "D_PAN", "D_WIDTH", "B_PHASE" }
-- Render settings for the bounce, set in this order and restored in reverse.
Bounce.NUM_SETTINGS = {
  { "RENDER_SETTINGS", 2 },    -- stems only, of the selected tracks
  { "RENDER_BOUNDSFLAG", 1 },  -- entire project
  { "RENDER_ADDTOPROJ", 0 },   -- never add the stems to the project; render silent tracks too
}
Bounce.STR_SETTINGS = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT" }
Bounce.PATTERN = "$track"
Bounce.FORMAT = "evaw"         -- REAPER's WAV sink with its default settings

-- --- small helpers ------------------------------------------------------------------------------

local function path_sep()
  local ok, os_name = pcall(reaper.GetOS)
  if ok and type(os_name) == "string" and os_name:match("^Win") then return "\\" end
  return "/"
end

local function is_absolute(path)
  return path:match("^/") ~= nil or path:match("^%a:[/\\]") ~= nil or path:match("^\\\\") ~= nil
end

local function dirname(path)
  return path:match("^(.*)[/\\][^/\\]*$")
end

local function basename(path)
  return path:match("([^/\\]*)$")
end

local function file_exists(path)
  local handle = io.open(path, "rb")
  if handle then handle:close() return true end
  return false
end

local JSON_ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                       ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

--- A JSON string literal. UTF-8 passes through; control characters become \u00XX. Bytes that are
--- not valid UTF-8 (a legacy track name) are escaped as the Latin-1 code points they would be, so
--- the manifest is always valid JSON.
function Bounce.json_string(text)
  text = tostring(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    return JSON_ESCAPES[c] or string.format("\\u%04x", c:byte())
  end)
  if utf8.len(escaped) == nil then
    escaped = escaped:gsub("[\128-\255]", function(c) return string.format("\\u%04x", c:byte()) end)
  end
  return '"' .. escaped .. '"'
end

--- The manifest as JSON text (docs/manifest.md). Keys in a fixed order, one stem per line.
function Bounce.manifest_json(m)
  local stems = {}
  for i, s in ipairs(m.stems) do
    stems[i] = string.format('  {"track_guid": %s, "track_name": %s, "file": %s, "sample_rate": %d}',
      Bounce.json_string(s.track_guid), Bounce.json_string(s.track_name),
      Bounce.json_string(s.file), math.floor(s.sample_rate))
  end
  return table.concat({
    "{",
    ' "schema": "mixbridge-bounce", "schema_version": 1,',
    ' "bounce_id": ' .. Bounce.json_string(m.bounce_id) .. ',',
    ' "created_at": ' .. Bounce.json_string(m.created_at) .. ',',
    ' "project": ' .. Bounce.json_string(m.project) .. ',',
    ' "render_dir": ' .. Bounce.json_string(m.render_dir) .. ',',
    ' "stems": [',
    table.concat(stems, ",\n"),
    " ]",
    "}",
    "",
  }, "\n")
end

--- Sample rate from a WAV/RF64 header ("fmt " chunk), or nil.
function Bounce.wav_sample_rate(path)
  local handle = io.open(path, "rb")
  if not handle then return nil end
  local head = handle:read(12)
  local rate = nil
  if head and #head == 12 and (head:sub(1, 4) == "RIFF" or head:sub(1, 4) == "RF64")
      and head:sub(9, 12) == "WAVE" then
    for _ = 1, 64 do  -- bounded: a damaged file must not loop forever
      local chunk = handle:read(8)
      if not chunk or #chunk < 8 then break end
      local size = string.unpack("<I4", chunk, 5)
      if chunk:sub(1, 4) == "fmt " then
        local body = handle:read(8)
        if body and #body == 8 then rate = string.unpack("<I4", body, 5) end
        break
      end
      if not handle:seek("cur", size + size % 2) then break end
    end
  end
  handle:close()
  return rate
end

--- `D_VOL=0.5;D_PAN=0` -> { D_VOL = 0.5, D_PAN = 0 } (only the attributes the bridge owns).
function Bounce.parse_pre_ai(text)
  local values = {}
  for attr, number in (text or ""):gmatch("([%w_]+)=([^;]+)") do
    local value = tonumber(number)
    for _, owned in ipairs(Bounce.OWNED_ATTRS) do
      if owned == attr and value ~= nil then values[attr] = value end
    end
  end
  return values
end

function Bounce.new_bounce_id()
  local _, frac = math.modf(reaper.time_precise())
  math.randomseed(os.time(), math.floor(frac * 1e6))
  return os.date("!%Y%m%dT%H%M%SZ") .. "-" .. string.format("%04x", math.random(0, 0xffff))
end

-- --- temporary changes, all undone in reverse order -------------------------------------------------

local Changes = {}
Changes.__index = Changes

function Changes.new() return setmetatable({ steps = {} }, Changes) end

--- Remember how to undo, then apply (so a failure half-way through still gets undone).
function Changes:make(undo, apply)
  self.steps[#self.steps + 1] = undo
  apply()
end

--- Undo everything, newest first; one failing step does not stop the others.
function Changes:restore()
  local errors = {}
  for i = #self.steps, 1, -1 do
    local ok, err = pcall(self.steps[i])
    if not ok then errors[#errors + 1] = tostring(err) end
    self.steps[i] = nil
  end
  return errors
end

-- --- the bounce ------------------------------------------------------------------------------------

--- Folder of the current project file, and its name ("" for an unsaved project).
function Bounce.project_location()
  local _, projfn = reaper.EnumProjects(-1)
  projfn = projfn or ""
  if projfn == "" then return nil, "" end
  return dirname(projfn), basename(projfn)
end

--- The watched folder: ProjExtState mixbridge/render_dir, else <project folder>/MixBridge stems.
function Bounce.render_dir()
  local project_dir = Bounce.project_location()
  local sep = path_sep()
  local _, configured = reaper.GetProjExtState(0, Bounce.SECTION, "render_dir")
  configured = configured or ""
  if configured ~= "" then
    if is_absolute(configured) then return configured end
    if project_dir then return project_dir .. sep .. configured end
    return nil, "the project extstate mixbridge/render_dir is relative and the project is not saved"
  end
  if not project_dir then
    return nil, "save the project first: the stems go into a folder beside it"
  end
  return project_dir .. sep .. Bounce.DEFAULT_SUBDIR
end

function Bounce.selected_tracks()
  local tracks = {}
  for i = 0, reaper.CountSelectedTracks(0) - 1 do
    local track = reaper.GetSelectedTrack(0, i)
    local _, name = reaper.GetTrackName(track)
    local _, guid = reaper.GetSetMediaTrackInfo_String(track, "GUID", "", false)
    tracks[#tracks + 1] = { ptr = track, name = name or "", guid = guid or "" }
  end
  return tracks
end

--- Bypass the AI FX and set the pre-AI values on every track: a selected bus also hears its children.
function Bounce.prepare_pre_ai(changes)
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    for fx = 0, reaper.TrackFX_GetCount(track) - 1 do
      local ok, renamed = reaper.TrackFX_GetNamedConfigParm(track, fx, "renamed_name")
      if ok and Bounce.AI_FX[renamed] and reaper.TrackFX_GetEnabled(track, fx) then
        changes:make(function() reaper.TrackFX_SetEnabled(track, fx, true) end,
                     function() reaper.TrackFX_SetEnabled(track, fx, false) end)
      end
    end
    local _, text = reaper.GetSetMediaTrackInfo_String(track, "P_EXT:mixbridge/pre_ai", "", false)
    local pre = Bounce.parse_pre_ai(text)
    for _, attr in ipairs(Bounce.OWNED_ATTRS) do
      local value = pre[attr]
      if value ~= nil then
        local old = reaper.GetMediaTrackInfo_Value(track, attr)
        if old ~= value then
          changes:make(function() reaper.SetMediaTrackInfo_Value(track, attr, old) end,
                       function() reaper.SetMediaTrackInfo_Value(track, attr, value) end)
        end
      end
    end
  end
end

function Bounce.set_render_settings(changes, dir)
  for _, item in ipairs(Bounce.NUM_SETTINGS) do
    local key, value = item[1], item[2]
    local old = reaper.GetSetProjectInfo(0, key, 0, false)
    changes:make(function() reaper.GetSetProjectInfo(0, key, old, true) end,
                 function() reaper.GetSetProjectInfo(0, key, value, true) end)
  end
  local wanted = { RENDER_FILE = dir, RENDER_PATTERN = Bounce.PATTERN, RENDER_FORMAT = Bounce.FORMAT }
  for _, key in ipairs(Bounce.STR_SETTINGS) do
    local _, old = reaper.GetSetProjectInfo_String(0, key, "", false)
    changes:make(function() reaper.GetSetProjectInfo_String(0, key, old or "", true) end,
                 function() reaper.GetSetProjectInfo_String(0, key, wanted[key], true) end)
  end
end

--- The files REAPER will write, paired with the selected tracks (same order, one per track).
function Bounce.targets(tracks)
  local _, text = reaper.GetSetProjectInfo_String(0, "RENDER_TARGETS", "", false)
  local files = {}
  for path in (text or ""):gmatch("[^;]+") do files[#files + 1] = path end
  if #files ~= #tracks then
    error(string.format("REAPER plans %d file(s) for %d selected track(s): %s", #files, #tracks,
      text or ""), 0)
  end
  return files
end

--- Render (inside the temporary state) and return the stems for the manifest.
function Bounce.render(tracks, dir, changes)
  Bounce.set_render_settings(changes, dir)
  reaper.PreventUIRefresh(1)
  local ok, err = pcall(Bounce.prepare_pre_ai, changes)
  reaper.PreventUIRefresh(-1)
  if not ok then error(err, 0) end
  local files = Bounce.targets(tracks)
  reaper.Main_OnCommand(Bounce.RENDER_ACTION, 0)  -- synchronous: returns when the files are written
  local fallback_rate = reaper.GetSetProjectInfo(0, "RENDER_SRATE", 0, false)
  if not fallback_rate or fallback_rate <= 0 then
    fallback_rate = reaper.GetSetProjectInfo(0, "PROJECT_SRATE", 0, false)
  end
  local stems, missing = {}, {}
  for i, track in ipairs(tracks) do
    local path = files[i]
    if not file_exists(path) then
      missing[#missing + 1] = path
    else
      stems[#stems + 1] = { track_guid = track.guid, track_name = track.name,
                            file = basename(path),
                            sample_rate = Bounce.wav_sample_rate(path) or fallback_rate }
    end
  end
  if #missing > 0 then
    error("the render did not write " .. table.concat(missing, ", ")
          .. " (was it cancelled?)", 0)
  end
  return stems
end

--- tmp file, then rename: a watcher never sees a half-written manifest.
function Bounce.write_manifest(dir, manifest)
  local sep = path_sep()
  local final = dir .. sep .. Bounce.MANIFEST_NAME
  local tmp = final .. ".tmp"
  local handle, err = io.open(tmp, "wb")
  if not handle then error("cannot write " .. tmp .. ": " .. tostring(err), 0) end
  handle:write(Bounce.manifest_json(manifest))
  handle:close()
  os.remove(final)  -- Windows cannot rename over an existing file (main() removed it already)
  local ok, rename_err = os.rename(tmp, final)
  if not ok then error("cannot rename " .. tmp .. ": " .. tostring(rename_err), 0) end
  return final
end

function Bounce.main()
  local tracks = Bounce.selected_tracks()
  if #tracks == 0 then
    reaper.ShowMessageBox("Select the tracks to bounce first.", Bounce.TITLE, 0)
    return false
  end
  local dir, why = Bounce.render_dir()
  if not dir then
    reaper.ShowMessageBox("Cannot bounce: " .. why .. ".", Bounce.TITLE, 0)
    return false
  end
  reaper.RecursiveCreateDirectory(dir, 0)
  local sep = path_sep()
  -- The previous bounce's manifest goes first: while these stems are being written, no manifest
  -- claims the folder is complete.
  os.remove(dir .. sep .. Bounce.MANIFEST_NAME)
  os.remove(dir .. sep .. Bounce.MANIFEST_NAME .. ".tmp")
  local created_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local bounce_id = Bounce.new_bounce_id()

  local changes = Changes.new()
  reaper.Undo_BeginBlock2(0)
  local ok, result = pcall(Bounce.render, tracks, dir, changes)
  reaper.PreventUIRefresh(1)
  local restore_errors = changes:restore()
  reaper.PreventUIRefresh(-1)
  -- Net change is nil (all restored); the named point keeps REAPER from adding "ReaScript: Run".
  reaper.Undo_EndBlock2(0, "MixBridge: bounce selected tracks as stems", -1)

  local manifest_path
  if ok then
    local _, project_name = Bounce.project_location()
    ok, result = pcall(Bounce.write_manifest, dir, {
      bounce_id = bounce_id, created_at = created_at, project = project_name or "",
      render_dir = dir, stems = result })
    manifest_path = ok and result or nil
  end
  if #restore_errors > 0 then
    reaper.ShowMessageBox("Some settings could not be put back after the bounce:\n"
      .. table.concat(restore_errors, "\n"), Bounce.TITLE, 0)
  end
  if not ok then
    reaper.ShowMessageBox("The bounce failed: " .. tostring(result)
      .. "\nYour render settings, FX and track values were restored.", Bounce.TITLE, 0)
    return false
  end
  reaper.SetExtState(Bounce.SECTION, "last_bounce", bounce_id, false)
  reaper.ShowConsoleMsg(string.format("MixBridge: bounced %d stem(s) into %s (%s)\n", #tracks, dir,
    manifest_path))
  return true
end

-- The test harness sets MIXBRIDGE_NO_MAIN to load the functions without running the bounce.
if not rawget(_G, "MIXBRIDGE_NO_MAIN") then
  Bounce.main()
end
return Bounce
