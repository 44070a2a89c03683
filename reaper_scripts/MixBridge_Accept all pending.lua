-- @description MixBridge: Accept all pending
-- @version 0.1.0
-- @author MixBridge
-- @about
--   Re-enables every pending suggestion (a parameter you changed by hand that the plan would still
--   move): the bridge writes them all on its next pass, as one undo point.
--
--   Sends the request "accept_all" to the running bridge (`mixbridge watch`) through REAPER's ExtState
--   (mixbridge/requests), which the bridge polls over REAPER's web interface, and shows the
--   bridge's reply as a tooltip. Needs REAPER's web interface enabled (reapy's setup enables it).
--   See docs/scripts.md.
-- @provides
--   [nomain] MixBridge_request.lua

-- MixBridge_request.lua sits beside this script (ReaPack and `mixbridge install-scripts` put it there).
local here = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local Request = dofile(here .. "MixBridge_request.lua")
Request.send("accept_all")
