#!/usr/bin/env bash
# The suite's optional tools: liblo-tools (oscsend/oscdump, independent OSC peers) and lua5.4 (the
# ReaScripts' tests).  Installed when this machine can (root with apt-get); otherwise one line per
# missing tool naming the tests that will be skipped, so no skip is silent.  pytest -rs lists them again.
set -u
missing=()
command -v oscsend >/dev/null && command -v oscdump >/dev/null || missing+=("liblo-tools")
command -v lua5.4 >/dev/null && { command -v luac5.4 >/dev/null || command -v luac >/dev/null; } || missing+=("lua5.4")
command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing+=("chromium" "chromium-driver")
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing ${missing[*]} for the tests that use them"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }
    missing=()
    command -v oscsend >/dev/null && command -v oscdump >/dev/null || missing+=("liblo-tools")
    command -v lua5.4 >/dev/null || missing+=("lua5.4")
    command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing+=("chromium" "chromium-driver")
fi
for tool in "${missing[@]}"; do
    case "$tool" in
        liblo-tools) echo "SKIPPING tests/test_osc_target.py and the oscsend/oscdump tests of tests/test_surface.py: liblo-tools is not installed (apt-get install liblo-tools)";;
        lua5.4) echo "SKIPPING the Lua tests of tests/test_scripts.py: lua5.4 is not installed (apt-get install lua5.4)";;
        chromium) echo "SKIPPING tests/test_web_browser.py: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";;
        chromium-driver) ;;
    esac
done
exit 0
