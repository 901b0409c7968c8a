"""What every browser test shares: Debian's Chromium, never a downloaded one."""

CHROMIUM = "/usr/bin/chromium"
# Background networking off: this machine's network is closed, and Chromium
# would otherwise keep trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
