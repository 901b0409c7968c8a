// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+10f745665dba";
export const BUILD_ID = "10f745665dba";
