// The ledger page's receipt check, in the browser and on no one's word: the entry's RFC 9162
// leaf hash and inclusion path (WebCrypto SHA-256) must lead to the checkpoint's root, and the
// checkpoint (a C2SP signed note) must carry a valid Ed25519 signature (WebCrypto) by the key
// in the page (`name+keyhash+base64(0x01 || key)`), its origin the key's name.
"use strict";
(() => {
  const form = document.getElementById("verify");
  const verdict = document.getElementById("verdict");
  if (!form || !verdict) return;
  const enc = new TextEncoder();
  const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  class Refused extends Error {}
  const refuse = (why) => { throw new Refused(why); };
  const unb64 = (text, what) => {
    if (!B64.test(text)) refuse(what + ": not base64");
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  };
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const decimal = (text, what) => {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) refuse(what + ": not a number");
    return Number(text);
  };

  function parseKey(vkey) {
    // name+hash+key, the key's base64 may itself hold "+": split at the first two only
    const text = vkey.trim();
    const first = text.indexOf("+");
    const second = text.indexOf("+", first + 1);
    if (first < 0 || second < 0) refuse("key: not name+hash+key");
    const [name, hash, key] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
    if (!name || !/^[0-9a-f]{8}$/.test(hash || "")) refuse("key: not name+hash+key");
    const material = unb64(key || "", "key");
    if (material.length !== 33 || material[0] !== 1) refuse("key: not Ed25519");
    return { name, hash: parseInt(hash, 16), raw: material.slice(1) };
  }

  function parseReceipt(text) {
    const cut = text.indexOf("\n\n");
    if (cut < 0) refuse("receipt: no blank line before the checkpoint");
    const lines = text.slice(0, cut).split("\n");
    if (lines.shift() !== "c2sp.org/tlog-proof@v1") refuse("receipt: wrong header");
    if (lines[0] && lines[0].startsWith("extra ")) lines.shift();
    const head = lines.shift() || "";
    if (!head.startsWith("index ")) refuse("receipt: no index line");
    const index = decimal(head.slice(6), "index");
    const proof = lines.map((l) => unb64(l, "proof hash"));
    if (proof.some((h) => h.length !== 32)) refuse("proof: not 32-byte hashes");
    return { index, proof, note: text.slice(cut + 2) };
  }

  async function openNote(note, key) {
    const cut = note.lastIndexOf("\n\n");
    if (cut < 0) refuse("checkpoint: no signatures");
    const body = note.slice(0, cut + 1);
    const sigs = note.slice(cut + 2).split("\n").filter((l) => l !== "");
    const pub = await crypto.subtle.importKey("raw", key.raw, { name: "Ed25519" }, false, ["verify"]);
    let good = false;
    for (const line of sigs) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) refuse("checkpoint: malformed signature line");
      const blob = unb64(m[2], "signature");
      const hash = new DataView(blob.buffer).getUint32(0);
      if (m[1] !== key.name || hash !== key.hash) continue;
      if (blob.length !== 68) refuse("checkpoint: bad signature length");
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, pub, blob.slice(4), enc.encode(body));
      if (!ok) refuse("checkpoint: bad signature by " + key.name);
      good = true;
    }
    if (!good) refuse("checkpoint: no signature by the ledger key");
    const [origin, size, root] = body.slice(0, -1).split("\n");
    if (origin !== key.name) refuse("checkpoint: of another log");
    return { size: decimal(size || "", "tree size"), root: unb64(root || "", "root") };
  }

  async function include(leafHash, index, size, proof, root) {
    // RFC 9162 §2.1.3.2
    if (index >= size) refuse("index is not below the tree size");
    let fn = index, sn = size - 1, r = leafHash;
    const node = async (a, b) => sha256(cat(Uint8Array.of(1), a, b));
    for (const p of proof) {
      if (sn === 0) refuse("proof: too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0 || !same(r, root)) refuse("proof: does not lead to the checkpoint's root");
  }

  async function check() {
    const key = parseKey(document.getElementById("vkey").value);
    const leaf = unb64(document.getElementById("leaf").value.trim(), "entry");
    const receipt = parseReceipt(document.getElementById("receipt").value.replace(/\r\n/g, "\n"));
    const checkpoint = await openNote(receipt.note, key);
    const leafHash = await sha256(cat(Uint8Array.of(0), leaf));
    await include(leafHash, receipt.index, checkpoint.size, receipt.proof, checkpoint.root);
    return receipt.index;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    verdict.className = "";
    verdict.textContent = verdict.dataset.busy;
    try {
      await check();
      verdict.className = "done verified";
      verdict.textContent = verdict.dataset.ok;
    } catch (error) {
      verdict.className = "error not-verified";
      const why = error instanceof Refused ? error.message : String(error);
      verdict.textContent = verdict.dataset.bad + " (" + why + ")";
    }
  });
})();
