// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+20c9eaf6f981";
export const BUILD_ID = "20c9eaf6f981";
