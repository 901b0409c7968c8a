// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ee71e0eeab36";
export const BUILD_ID = "ee71e0eeab36";
