// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+baff98b0c18c";
export const BUILD_ID = "baff98b0c18c";
