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
// - Push: shows the notification, records the case number on the phone and
//   tells open screens (postMessage); pushsubscriptionchange resubscribes.

import { applyServerIncident } from "./js/outbox.js";
import { resubscribe } from "./js/push.js";
import { fetchMe, flush, announce, SYNC_TAG } from "./js/sync.js";

// BUILD:PRECACHE-BEGIN (written by scripts/build_pwa.py; do not edit by hand)
const BUILD_ID = "58e61bc5f796";
const PRECACHE = {
  "/css/app.css": "ce48d1a1e1df14a0065277b212bbda85c7ae393e918a5e2a0a0094d62db43901",
  "/css/console.css": "2441aaaac6a13e787ca17368dd39e8b9c173ab3de95825869b142abb9dbdf701",
  "/css/police.css": "12475d7759e0f66f9983e753b8ff5543f26c6de13ff246f2c8cf8ce625aa6f94",
  "/css/print.css": "9381ff588d6be567753e08964e3fe86474dc9ec36c9dc55bfd41f9607cbae155",
  "/css/push.css": "86995a0a6dfe8e151166b5767c9b3bf92376e2d0dfd756798636819acbe82cbd",
  "/icons/icon-192.png": "8b1df7d84a8c3da7d92e14ef4cb36448f719541c4011597b4ba46ec2ee39751c",
  "/icons/icon-512.png": "3fdee4dec5401ae7eb604b3ef13eabe4829407e0f32174932666477c88e7fe54",
  "/icons/icon-maskable-512.png": "21a55b53a725977bf590b51c18e2ccd33c6dd47aa5a2f2f59e3ff08782b9825e",
  "/index.html": "fd6d40fafa354b7ba5b737aa2a2d4952d3797b08b234a5be6452fb717928a0c8",
  "/js/address.js": "ba25e755ce1c4c205f3cdf5bb6a19d80a2d127057c8056f7ab12a1432cc6e3b5",
  "/js/api.js": "1ed5231b15dd807d92dd818f19f04e23d33131093108ce5ec9099c9c58aefe47",
  "/js/app.js": "8e46a9018d09ba8ccbf7f0c261feb61e45043d3497d57cea4134e78c5bcea3bb",
  "/js/auth.js": "df73c3e25ef3d641396fb093e97874616720cf2079b8930b507ca0c128302a77",
  "/js/backoff.js": "18c974e237c7808aa427e09a68c454dc56ed17f1e8ce12535c8045e994861db6",
  "/js/charts.js": "53e9cf83a7cc803032b995e5eda54cef576fa4ed2c502a81984f525296500411",
  "/js/console.js": "6cefdbfa6218c57b13d1d613498c25460bdc423b3dbb0fb6d41796405b447884",
  "/js/dom.js": "7b68163df3e8cefaaafe6db6514c68c3c1ab29a2900c59a28d1a9641ac2dde7f",
  "/js/hazard_console.js": "907ab0e74e1b17357ada2b0871ecb5ae8c56208dadddd471854d18565e301e5c",
  "/js/hazards.js": "273fa0ba34de4237302bce2c78f7b8c608dd879a56ada11a1b5f7e51a4f24c94",
  "/js/history.js": "4ff60c8c43efc3ad44bcdbae833d614a37c993f55f12acf98eaed2b5bf6aac42",
  "/js/i18n.js": "bdaa51644cc917b3a9af16e420002443f295209d21624b75f2521f519b26467d",
  "/js/i18n_hazards.js": "a852914cab9789a4cc4703a6b530285998c6a54e73f54f18e841e3423e06db48",
  "/js/law.js": "923fa196b02f09a536ba7a5a12ab6d929f5add49be9939b6ca7e7d246394f41d",
  "/js/outbox.js": "e28f2e32ee285bb59f1aa3319f47f68d16c7fe191e55f8886e359f0e474357ac",
  "/js/police.js": "1d2f7b166142848b8b7ddcdafcfafe98cecf0f36f871ab9994974a96dea8db25",
  "/js/push.js": "512c9f78863cc3075f7239493e40e27e55670c955a2ed2b48bc1f51559b9f323",
  "/js/store.js": "c4c7551183b081785ef8f3c2061f9f214c8bceb1e24c1bd394e99af6105647e8",
  "/js/sync.js": "b9be29381822e7367998d3fd1f3ac8eefcb4b92dcbb852731798427f8b146fd9",
  "/js/ui.js": "42476414a2c7320893c4d0e6dde5c95437830b51a262770bea6ec25f2f8eecc1",
  "/js/version.js": "f0dc88ebfcdb38fc8ac46b4b4da0fe7175ec2b364eb836f877fe682796d00f91",
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
  })());
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "Qorgau", body: event.data ? event.data.text() : "" };
  }
  event.waitUntil((async () => {
    if (data.incident && data.incident_id) {
      try {
        // The payload's incident summary has no id of its own; only the case
        // number and status are taken (its classification is a short form).
        await applyServerIncident({ id: data.incident_id,
          case_number: data.case_number || data.incident.case_number,
          status: data.incident.status });
        announce({ type: "outbox-changed" });
      } catch { /* not an incident on this phone */ }
    }
    await self.registration.showNotification(data.title || "Qorgau", {
      body: data.body || "",
      tag: data.tag || undefined,
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      requireInteraction: Boolean(data.require_interaction),
      data: { url: data.url || "/" },
    });
    // Open screens refresh (the police list) without waiting for their timer.
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      client.postMessage({ type: "push", kind: data.type || null,
        incident_id: data.incident_id || null });
    }
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
