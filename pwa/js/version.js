// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+51f597440c23";
export const BUILD_ID = "51f597440c23";
