// The wallet's service worker (scope /wallet/). The server fills CONFIG in: this version's cache
// name, the page's URL and every asset's versioned URL. Install keeps them all; activate deletes
// every other duopass-wallet cache; the page is fetched from the network first (a new version,
// the language asked for) and from the cache when offline; assets come from the cache first.

const CONFIG = /*CONFIG*/ null;
const FAMILY = "duopass-wallet-";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CONFIG.cache)
      .then((cache) => cache.addAll([CONFIG.page, ...CONFIG.assets]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith(FAMILY) && name !== CONFIG.cache)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

async function pageFirstFromNetwork(request) {
  const cache = await caches.open(CONFIG.cache);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(CONFIG.page, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(CONFIG.page);
    if (cached) return cached;
    throw error;
  }
}

async function assetFromCache(request) {
  const cached = await caches.match(request, { cacheName: CONFIG.cache });
  return cached || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (event.request.mode === "navigate" && url.pathname === CONFIG.page) {
    event.respondWith(pageFirstFromNetwork(event.request));
  } else if (CONFIG.assets.includes(url.pathname + url.search)) {
    event.respondWith(assetFromCache(event.request));
  }
});
