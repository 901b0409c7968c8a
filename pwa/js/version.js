// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+bf16b6b3722d";
export const BUILD_ID = "bf16b6b3722d";
