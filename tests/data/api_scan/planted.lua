-- Planted REAPER calls for tests/test_reaper_api.py: every line marked "expect:" must be reported
-- (the text after it is part of the message); no other line may be. Not run, only scanned.
-- reaper.NotAFunction(1) in a comment is ignored
--[[ reaper.AlsoNotAFunction(1, 2)
     in a long comment ]]
local s = "reaper.StillNotAFunction(1)"  -- in a string
local t = [[ reaper.NorThis() ]]

local tr = reaper.GetTrack(0, 0)
local ok, name = reaper.GetTrackName(tr)
local _, projfn = reaper.EnumProjects(-1)
local _, value = reaper.GetSetMediaTrackInfo_String(tr, "P_EXT:a/b", "", false)
reaper.InsertEnvelopePoint(nil, 0, 1, 0, 0, false)               -- the trailing noSortIn is optional
reaper.InsertEnvelopePoint(nil, 0, 1, 0, 0, false, true)
reaper.TrackFX_SetEnabled(tr, 0,
  true)                                                          -- split over two lines
reaper.defer(function() local a, b = 1, 2 reaper.ShowConsoleMsg(a .. b) end)
reaper.ShowConsoleMsg(string.format("%d, %d", 1, 2))
local ok2, os_name = pcall(reaper.GetOS)
local get = reaper.GetExtState
get("mixbridge", "requests")
reaper.ShowConsoleMsg "sugar"

reaper.TrackFX_SetParamNormalised(tr, 0, 1, 0.5)                -- expect: is not a REAPER API function
reaper.GetTrackName(tr, "", 64)                                   -- expect: takes 1..1 arguments in Lua
reaper.TrackFX_SetEnabled(tr,                                     -- expect: takes 3..3 arguments in Lua, given 2
  0)
reaper.InsertEnvelopePoint(nil, 0, 1, 0)                          -- expect: takes 6..7 arguments in Lua, given 4
local n = reaper.CountTrack(0)                                    -- expect: CountTrack is not a REAPER API function
local bad = pcall(reaper.GetExtState, "mixbridge")                -- expect: takes 2..2 arguments in Lua, given 1
local set = reaper.SetExtState
set("mixbridge", "k", "v")                                        -- expect: takes 4..4 arguments in Lua, given 3
reaper.defer()                                                    -- expect: reaper.defer takes 1..1
local f = reaper.GetMediaTrackInfoValue                           -- expect: GetMediaTrackInfoValue is not a REAPER API
reaper["GetTrakc"](tr)                                            -- expect: GetTrakc is not a REAPER API function
