// Qorgau's service worker (an ES module; served from / with Cache-Control: no-cache).
//
// - Precaches the shell listed below (file → SHA-256, written by
//   scripts/build_pwa.py) and checks each download against its hash, so a
//   half-deployed server can never leave a mixed shell in the cache.
// - Serves the shell cache-first, so the app opens with no signal. The API is
//   never cached here: data the app needs offline lives in IndexedDB.
// - A new version installs alongside and waits: the page shows "update ready"
//   and tells it to take over only when the person agrees and no write is in
//   flight. Activation deletes old shell caches and nothing else; the outbox
//   is in IndexedDB, which an update never touches.
// - Background Sync ("qorgau-outbox") flushes the outbox with the same code
//   the page uses (js/sync.js), under the same Web Lock.
// - Push: always shows a notification (our payload or a Declarative Web Push
//   one), records the case number on the phone and tells open screens
//   (postMessage); pushsubscriptionchange resubscribes.

import { applyServerIncident } from "./js/outbox.js";
import { resubscribe } from "./js/push.js";
import { fetchMe, flush, announce, SYNC_TAG } from "./js/sync.js";
import { pendingSummary, uploadPending } from "./js/media_store.js";

// BUILD:PRECACHE-BEGIN (written by scripts/build_pwa.py; do not edit by hand)
const BUILD_ID = "51f597440c23";
const PRECACHE = {
  "/css/app.css": "e415158db80da576e054cc1d05f05ba94775c1683196204e50fe89554ba50c96",
  "/css/checkin.css": "8ce2c83b988e9d31ae2fd3fc0d79363ef558ae9692ebde923a3d45489dae4a00",
  "/css/console.css": "eebede2d96449a46b8c8722b6fba96c38f4da726802b5402c0ce9bd2716f8cf7",
  "/css/police.css": "12475d7759e0f66f9983e753b8ff5543f26c6de13ff246f2c8cf8ce625aa6f94",
  "/css/print.css": "9381ff588d6be567753e08964e3fe86474dc9ec36c9dc55bfd41f9607cbae155",
  "/css/push.css": "86995a0a6dfe8e151166b5767c9b3bf92376e2d0dfd756798636819acbe82cbd",
  "/css/sos.css": "555dc467a24fd7722aeb4a4893f378115241a210e63da8ae11bce800f28ab617",
  "/icons/icon-192.png": "8b1df7d84a8c3da7d92e14ef4cb36448f719541c4011597b4ba46ec2ee39751c",
  "/icons/icon-512.png": "3fdee4dec5401ae7eb604b3ef13eabe4829407e0f32174932666477c88e7fe54",
  "/icons/icon-maskable-512.png": "21a55b53a725977bf590b51c18e2ccd33c6dd47aa5a2f2f59e3ff08782b9825e",
  "/index.html": "66950edf60e9aa52bce0aaaf6adad7a9415407dcea4830a9042c4c042a586cdf",
  "/js/address.js": "ba25e755ce1c4c205f3cdf5bb6a19d80a2d127057c8056f7ab12a1432cc6e3b5",
  "/js/api.js": "b625c33d19b0ceda42af8337393a802678fc0f3e6cae84be5f599bf41eedd865",
  "/js/app.js": "beddf32c0afe068d36712f41ee44f48c7d4d7ba6c4748fdc09a5f9ee9d690baa",
  "/js/auth.js": "df73c3e25ef3d641396fb093e97874616720cf2079b8930b507ca0c128302a77",
  "/js/backoff.js": "eb3ec68154308e954c17b6eb9a66253537595cdb532ff88b160fac453e63aaaa",
  "/js/charts.js": "53e9cf83a7cc803032b995e5eda54cef576fa4ed2c502a81984f525296500411",
  "/js/checkin.js": "7fcac38bda7b2bddfa6f2b1737777023612b65f5bd7ab278327ffc8d49dc65f7",
  "/js/checkin_console.js": "b31d434c866a8fb6af02cec4cc66e83543998abc03068dbbfe6344597c47a854",
  "/js/console.js": "45032d8e99fadb607ce669f0b189392cf1ca3239028055196786f64d04329945",
  "/js/dom.js": "6030fdfbe1508238e1a272a6bdb38269cdd1b72db28ae3fb36d9710175f46af9",
  "/js/hazard_console.js": "907ab0e74e1b17357ada2b0871ecb5ae8c56208dadddd471854d18565e301e5c",
  "/js/hazards.js": "273fa0ba34de4237302bce2c78f7b8c608dd879a56ada11a1b5f7e51a4f24c94",
  "/js/history.js": "4ff60c8c43efc3ad44bcdbae833d614a37c993f55f12acf98eaed2b5bf6aac42",
  "/js/i18n.js": "233c931713082bc55f836b03c05521d44c6273acd13097adc7c121a8d240231f",
  "/js/i18n_checkin.js": "1c8250f6635de95ad32bb04a09dc7e8bc877f00577221bca06bdd899988227da",
  "/js/i18n_hazards.js": "a852914cab9789a4cc4703a6b530285998c6a54e73f54f18e841e3423e06db48",
  "/js/i18n_media.js": "021d5ef52d340620b9b1e4cd0505ee1392e16ab5e16f9027fac6d9e1e3aa2b85",
  "/js/i18n_sms.js": "79f216be016b657954ac50c6c1fdbc26636221336344d7a76b8542bd8e2bfba0",
  "/js/i18n_sos.js": "b29bf33f05a0cd006ec9918d724567e41cad109b7621f2eba64ac054df12c6ee",
  "/js/law.js": "a6faf638d22907fa5cbea20ece30ce4e7abb049d38b8274a13a3599b30c4eebe",
  "/js/media.js": "25d901b89bf80526d6c2c28df4dd4a2f0878776f01006cafd30cb253c4e36a30",
  "/js/media_store.js": "e2defa139e60e10cc4d3e17ab630da8a4f86aad0587bfa5137ebf4f0b3a99717",
  "/js/media_view.js": "5fb7a9a873e8c2f8658c9a3903d019921022e0593e97d764b0bf7f0fcc425345",
  "/js/outbox.js": "b42ccac7637b396fbad2ad2b9af0b17db4534430969ee27dc214decd816a9272",
  "/js/police.js": "eaa98b64e40ce4e277833cfea0f1fcbce19c077dc3e162ac136c16794fbcfca0",
  "/js/police_sos.js": "a5a446cf2bf160610992358cb6a5f541982fc186c941cf075d5dbc5a6bbf200f",
  "/js/push.js": "512c9f78863cc3075f7239493e40e27e55670c955a2ed2b48bc1f51559b9f323",
  "/js/replica.js": "3282ef50e99caedc593fb4709d16433a0a9c32c9b1c214f45da13e9d48c9fecd",
  "/js/sms.js": "cb0ffb4b501c04869280c52ab2337be3074e3459aca8327fa3c23b6e6cc273f8",
  "/js/sms_codec.js": "ca805bc06d76739cf0293302011bbde484d2cd7eb48f1c8cc19fa8bce05d5851",
  "/js/sos.js": "b61a406e952c6aeea8626663bd0e3fa0c5e20f3af5d7684f823317d5c26a061a",
  "/js/sos_pin.js": "66624445f8e951fa3afc907dada3a815232499ed7a68965144a7ceb053a65d9e",
  "/js/store.js": "640997359477601e182a5ef04d9667672c6090d0b7b7a492a03af5af99bea9a4",
  "/js/sync.js": "7fdaf414a6c89639ef912de94b69cb806ca2579137aee8d3c31c1c9b62987d65",
  "/js/ui.js": "1da7228ea9a5aa0fa08189f853e448b04cf5c00f640fc42b174e712500ae716a",
  "/js/version.js": "091e2abf5ace7adf33847b17a4f2d2deb37932060e68c96477c9fae164935282",
  "/manifest.webmanifest": "dcf7f1e79051564820943c27cc5353b78402e4ba77a80c456fe3b1637bce890d"
};
// BUILD:PRECACHE-END

const CACHE_PREFIX = "qorgau-shell-";
const CACHE = CACHE_PREFIX + BUILD_ID;
const INDEX = "/index.html";

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function precache() {
  const cache = await caches.open(CACHE);
  await Promise.all(Object.entries(PRECACHE).map(async ([path, sha256]) => {
    // Skip the HTTP cache: the file must be the one this build hashed.
    const response = await fetch(path, { cache: "no-cache" });
    if (!response.ok) throw new Error(`precache ${path}: HTTP ${response.status}`);
    const digest = hex(await crypto.subtle.digest("SHA-256", await response.clone().arrayBuffer()));
    if (digest !== sha256) throw new Error(`precache ${path}: content does not match the build`);
    await cache.put(path, response);
  }));
}

self.addEventListener("install", (event) => {
  // No skipWaiting(): a running page keeps the code it started with until the
  // person accepts the update (see the "message" handler).
  event.waitUntil(precache());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "SKIP_WAITING") self.skipWaiting();
  if (data.type === "VERSION" && event.ports[0]) event.ports[0].postMessage({ build: BUILD_ID });
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  if (request.mode === "navigate") {
    // Every page of the app is index.html with a #/route; offline it comes from the cache.
    event.respondWith(caches.open(CACHE)
      .then((cache) => cache.match(INDEX))
      .then((cached) => cached || fetch(request)));
    return;
  }
  if (url.pathname in PRECACHE) {
    event.respondWith(caches.open(CACHE)
      .then((cache) => cache.match(url.pathname))
      .then((cached) => cached || fetch(request)));
  }
});

self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil((async () => {
    const result = await flush();
    if (result.state === "signin") {
      // Cannot ask from here; open pages show the sign-in prompt.
      announce({ type: "signin-needed" });
      return;
    }
    // Rejecting tells the browser to retry this sync later (with its own backoff).
    if (result.state === "offline" || result.state === "error") {
      throw new Error(`outbox flush: ${result.state}`);
    }
    // Then the photos and recordings of incidents now synced (js/media_store.js).
    if ((await pendingSummary()).count) {
      const media = await uploadPending();
      if (media.stored) announce({ type: "media-changed" });
      if (media.state === "offline" || media.state === "error") {
        throw new Error(`media upload: ${media.state}`);
      }
    }
  })());
});

// What to show for a push, from either shape: our own fields (title, body,
// url, tag), or a Declarative Web Push message ("web_push": 8030 and a
// `notification` member, which iOS 18.4+ shows by itself). Whatever arrives,
// something is shown: iOS revokes the subscription of a site whose pushes
// show no notification.
function notificationFor(data) {
  const declared = data && typeof data.notification === "object" && data.notification
    ? data.notification : {};
  const text = (...values) => values.find((v) => typeof v === "string" && v) || "";
  let url = text(data.url, declared.navigate) || "/";
  try {
    // Only ever open a page of this app.
    if (new URL(url, self.location.origin).origin !== self.location.origin) url = "/";
  } catch { url = "/"; }
  return {
    title: text(data.title, declared.title) || "Qorgau",
    options: {
      body: text(data.body, declared.body),
      tag: text(data.tag, declared.tag) || undefined,
      lang: text(data.lang, declared.lang) || undefined,
      dir: ["ltr", "rtl", "auto"].includes(declared.dir) ? declared.dir : "auto",
      silent: false,
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      requireInteraction: Boolean(data.require_interaction),
      data: { url },
    },
  };
}

function pushData(event) {
  if (!event.data) return {};
  try {
    const data = event.data.json();
    return data && typeof data === "object" ? data : {};
  } catch {
    return { title: "Qorgau", body: event.data.text() };
  }
}

self.addEventListener("push", (event) => {
  const data = pushData(event);
  const { title, options } = notificationFor(data);
  event.waitUntil((async () => {
    try {
      if (data.incident && data.incident_id) {
        // The payload's incident summary has no id of its own; only the case
        // number and status are taken (its classification is a short form).
        const known = { id: data.incident_id,
          case_number: data.case_number || data.incident.case_number,
          status: data.incident.status };
        // A manager's decision on a stated time: the phone stops showing it as waiting.
        if ("occurred_at_pending" in data.incident) {
          known.occurred_at_pending = data.incident.occurred_at_pending;
        }
        await applyServerIncident(known);
        announce({ type: "outbox-changed" });
      }
    } catch { /* not an incident on this phone */ }
    // Always, whatever happened above.
    await self.registration.showNotification(title, options);
    try {
      // Open screens refresh (the police list) without waiting for their timer.
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        client.postMessage({ type: "push", kind: data.type || null,
          incident_id: data.incident_id || null });
      }
    } catch { /* no open screen to tell */ }
  })());
});

// The browser renewed or dropped the subscription: subscribe again with the
// same key and tell the server (it replaces this device's old endpoint).
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(resubscribe(self.registration, event, fetchMe)
    .catch((err) => console.warn("pushsubscriptionchange:", err)));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin) {
        await client.focus();
        return client.navigate(target);
      }
    }
    return self.clients.openWindow(target);
  })());
});
