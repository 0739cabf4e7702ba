// IndexedDB persistence: the phone identity (Ed25519 CryptoKey, non-extractable)
// and the pairing record (pairing secret as a non-extractable HMAC CryptoKey).
import { deviceIdOf, newIdentity, type Bytes, type Identity } from "../proto/crypto";

/** Pairing records carry the pairing version that made them; only v2 records are used. */
export const PAIRING_VERSION = 2;

const DB = "muxlink";
const STORE = "kv";

/** What the phone remembers about its one paired host. */
export interface PairingRecord {
  /** PAIRING_VERSION; records without it come from pairing v1 and are not used. */
  version: number;
  hostDeviceId: string;
  hostName: string;
  serverUrl: string;
  /** The 32-byte pairing secret K as an HMAC-SHA256 key (sign + verify); never leaves WebCrypto. */
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

/**
 * The stored pairing: `undefined` when none, `"outdated"` for a record made
 * by pairing v1 (its secret may be known to a hostile server; it is deleted).
 */
export async function loadPairing(): Promise<PairingRecord | "outdated" | undefined> {
  const r = await get<PairingRecord>("pairing");
  if (r === undefined) return undefined;
  if (r.version !== PAIRING_VERSION || !(r.secret instanceof CryptoKey) || !r.secret.usages.includes("verify")) {
    await forgetPairing();
    return "outdated";
  }
  return r;
}
export const savePairing = (r: PairingRecord) => put("pairing", r);
export const forgetPairing = () => del("pairing");
