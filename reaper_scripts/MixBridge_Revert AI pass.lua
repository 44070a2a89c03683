-- @description MixBridge: Revert AI pass
-- @version 0.1.0
-- @author MixBridge
-- @about
--   Puts every value the bridge wrote back to its pre-AI value and removes the AI FX (one undo point); your own changes stay.
--
--   Sends the request "revert" to the running bridge (`mixbridge watch`) through REAPER's ExtState
--   (mixbridge/requests), which the bridge polls over REAPER's web interface, and shows the
--   bridge's reply as a tooltip. Needs REAPER's web interface enabled (reapy's setup enables it).
--   See docs/scripts.md.
-- @provides
--   [nomain] MixBridge_request.lua

-- MixBridge_request.lua sits beside this script (ReaPack and `mixbridge install-scripts` put it there).
local here = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local Request = dofile(here .. "MixBridge_request.lua")
Request.send("revert")
