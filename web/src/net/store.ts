// IndexedDB persistence: the phone identity (Ed25519 CryptoKey, non-extractable)
// and the pairing record (pairing secret as a non-extractable HMAC CryptoKey).
import { deviceIdOf, newIdentity, type Bytes, type Identity } from "../proto/crypto";

const DB = "muxlink";
const STORE = "kv";

/** What the phone remembers about its one paired host. */
export interface PairingRecord {
  hostDeviceId: string;
  hostName: string;
  serverUrl: string;
  /** HMAC-SHA256 key of the 32-byte pairing secret; never leaves WebCrypto. */
  secret: CryptoKey;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("cannot open IndexedDB"));
  });
}

async function op<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result as T);
      tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    });
  } finally {
    db.close();
  }
}

export const get = <T>(key: string) => op<T | undefined>("readonly", (s) => s.get(key));
export const put = (key: string, value: unknown) => op<IDBValidKey>("readwrite", (s) => s.put(value, key));
export const del = (key: string) => op<undefined>("readwrite", (s) => s.delete(key));

interface StoredIdentity {
  privateKey: CryptoKey;
  publicKey: Bytes;
}

/** The identity, created and stored on first use. */
export async function loadIdentity(): Promise<Identity> {
  const stored = await get<StoredIdentity>("identity");
  if (stored) return { ...stored, deviceId: await deviceIdOf(stored.publicKey) };
  const id = await newIdentity();
  await put("identity", { privateKey: id.privateKey, publicKey: id.publicKey });
  return id;
}

export const loadPairing = () => get<PairingRecord>("pairing");
export const savePairing = (r: PairingRecord) => put("pairing", r);
export const forgetPairing = () => del("pairing");

/** Imports raw secret bytes as the stored HMAC key and wipes the bytes. */
export async function secretKey(raw: Bytes): Promise<CryptoKey> {
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  raw.fill(0);
  return key;
}
