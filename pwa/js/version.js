// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ce9383b24e37";
export const BUILD_ID = "ce9383b24e37";
