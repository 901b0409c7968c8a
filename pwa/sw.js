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
const BUILD_ID = "6f24b2bd534e";
const PRECACHE = {
  "/css/app.css": "dcf86563b2996f18f4fe1c08dcbdec7d77a4ee3c493682eb81547ea227f16418",
  "/css/console.css": "28fde32dda3a30cb99dc297ce5b04b13caaf65b9436d62ab9dab03bed1a94e35",
  "/css/police.css": "434bec70e4118337d376bd81eb0838cc65512fe92c8bdd3ee7b77b08efd3868e",
  "/css/print.css": "5c60b83ac4c38f70f89566af11675adb3e3e908c8273fc4c70f5cadb0aa9762f",
  "/css/push.css": "86995a0a6dfe8e151166b5767c9b3bf92376e2d0dfd756798636819acbe82cbd",
  "/icons/icon-192.png": "8b1df7d84a8c3da7d92e14ef4cb36448f719541c4011597b4ba46ec2ee39751c",
  "/icons/icon-512.png": "3fdee4dec5401ae7eb604b3ef13eabe4829407e0f32174932666477c88e7fe54",
  "/icons/icon-maskable-512.png": "21a55b53a725977bf590b51c18e2ccd33c6dd47aa5a2f2f59e3ff08782b9825e",
  "/index.html": "dafc1399572b02472dfcd20856cba720e0f9204c998ceff0ce29372f5e087f73",
  "/js/address.js": "ba25e755ce1c4c205f3cdf5bb6a19d80a2d127057c8056f7ab12a1432cc6e3b5",
  "/js/api.js": "1ed5231b15dd807d92dd818f19f04e23d33131093108ce5ec9099c9c58aefe47",
  "/js/app.js": "3e7af8cf91faab4964e9ff51935fc30b6b6bd8aa9d456a78d9b3c42480bd0e4e",
  "/js/auth.js": "e58cd98db171e7bac3c2f08bb68d3733c7a508673dda7f15a9548ff009e5f6d7",
  "/js/backoff.js": "18c974e237c7808aa427e09a68c454dc56ed17f1e8ce12535c8045e994861db6",
  "/js/charts.js": "53e9cf83a7cc803032b995e5eda54cef576fa4ed2c502a81984f525296500411",
  "/js/console.js": "e5486adb120a56942c7519436c6ab468c431bc3dbaa39da8e5d4812f4704dc5b",
  "/js/dom.js": "e012da1b70eb8561ff62d08d4f081d26f75cea7980604621e20264ec5047079c",
  "/js/hazard_console.js": "907ab0e74e1b17357ada2b0871ecb5ae8c56208dadddd471854d18565e301e5c",
  "/js/hazards.js": "d50b6f2a8de7fc23f82df79639d2ca81efe181da872880e2edd302b69644bdc2",
  "/js/i18n.js": "4bf389e69fcd0ec02f9e220c241ce54f85d8837ab71d53677696713c0596e5af",
  "/js/i18n_hazards.js": "a852914cab9789a4cc4703a6b530285998c6a54e73f54f18e841e3423e06db48",
  "/js/law.js": "923fa196b02f09a536ba7a5a12ab6d929f5add49be9939b6ca7e7d246394f41d",
  "/js/outbox.js": "e28f2e32ee285bb59f1aa3319f47f68d16c7fe191e55f8886e359f0e474357ac",
  "/js/police.js": "8e70be78bd7210084ba8c9c1e38ac75040b8574ee052229947a1ab2d48a56612",
  "/js/push.js": "512c9f78863cc3075f7239493e40e27e55670c955a2ed2b48bc1f51559b9f323",
  "/js/store.js": "c4c7551183b081785ef8f3c2061f9f214c8bceb1e24c1bd394e99af6105647e8",
  "/js/sync.js": "b9be29381822e7367998d3fd1f3ac8eefcb4b92dcbb852731798427f8b146fd9",
  "/js/ui.js": "3aa5182809c21aaca2549605dd0d4c1018a1b85f2dcaae60a6ab14b001391520",
  "/js/version.js": "c0dc0effa1843e6bcef9aada1c1978c1c6d2c736ad7c18a5a8269df601eaacd1",
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
