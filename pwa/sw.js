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
const BUILD_ID = "f42ed9ea3f0a";
const PRECACHE = {
  "/css/app.css": "ce203c055ea5c352a53af0a838973bc75a68f512a8a8f61a9c7549e81ba72306",
  "/css/console.css": "28fde32dda3a30cb99dc297ce5b04b13caaf65b9436d62ab9dab03bed1a94e35",
  "/css/police.css": "434bec70e4118337d376bd81eb0838cc65512fe92c8bdd3ee7b77b08efd3868e",
  "/css/print.css": "5c60b83ac4c38f70f89566af11675adb3e3e908c8273fc4c70f5cadb0aa9762f",
  "/css/push.css": "86995a0a6dfe8e151166b5767c9b3bf92376e2d0dfd756798636819acbe82cbd",
  "/icons/icon-192.png": "8b1df7d84a8c3da7d92e14ef4cb36448f719541c4011597b4ba46ec2ee39751c",
  "/icons/icon-512.png": "3fdee4dec5401ae7eb604b3ef13eabe4829407e0f32174932666477c88e7fe54",
  "/icons/icon-maskable-512.png": "21a55b53a725977bf590b51c18e2ccd33c6dd47aa5a2f2f59e3ff08782b9825e",
  "/index.html": "dafc1399572b02472dfcd20856cba720e0f9204c998ceff0ce29372f5e087f73",
  "/js/api.js": "1ed5231b15dd807d92dd818f19f04e23d33131093108ce5ec9099c9c58aefe47",
  "/js/app.js": "820bd7badf5422235f703a61b9671d2e3e40fa7190f6549dfb81bb6a7b1d3085",
  "/js/auth.js": "88d4e85566a3d2deb42428f8f31040b9d35a76b3baf157b099ad41a678c15120",
  "/js/backoff.js": "18c974e237c7808aa427e09a68c454dc56ed17f1e8ce12535c8045e994861db6",
  "/js/charts.js": "53e9cf83a7cc803032b995e5eda54cef576fa4ed2c502a81984f525296500411",
  "/js/console.js": "bdca49d5ea6bf48a9f400aa5bfa17727ebe66d743d64140fa939277d746e546e",
  "/js/dom.js": "e012da1b70eb8561ff62d08d4f081d26f75cea7980604621e20264ec5047079c",
  "/js/i18n.js": "fe6fe26fb34e34070a1c77ffc99890f7ea002f2a34102a219c81031f1ed754e2",
  "/js/law.js": "923fa196b02f09a536ba7a5a12ab6d929f5add49be9939b6ca7e7d246394f41d",
  "/js/outbox.js": "e28f2e32ee285bb59f1aa3319f47f68d16c7fe191e55f8886e359f0e474357ac",
  "/js/police.js": "684261d833d865b02146d4e73aeae9cfda3cfb8cfe62864484c76ccaab2f9270",
  "/js/push.js": "512c9f78863cc3075f7239493e40e27e55670c955a2ed2b48bc1f51559b9f323",
  "/js/store.js": "c4c7551183b081785ef8f3c2061f9f214c8bceb1e24c1bd394e99af6105647e8",
  "/js/sync.js": "f9d83eb866f5cabd285e346d4077c5156b82d33dad0f8c33fc9c56fec1973a8f",
  "/js/ui.js": "3aa5182809c21aaca2549605dd0d4c1018a1b85f2dcaae60a6ab14b001391520",
  "/js/version.js": "e88ebf3f589c5a459ab71513097f4142cf2e2f1886d3cdaedb0c20db7dd13e8f",
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
