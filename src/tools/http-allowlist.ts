/**
 * Which hosts `http:request` may call, and which addresses it refuses to
 * reach through a name (SSRF): the pure parts of the HTTP tool.
 *
 * - An allowlist entry is `HOST` (every port) or `HOST:PORT`, a host as it
 *   is written in a URL: a name, an IPv4 address, or an IPv6 address in
 *   brackets. Entries and URLs are both read with the URL parser, so they
 *   compare in one form (lower case, `127.1` is `127.0.0.1`, `[0::1]` is
 *   `[::1]`); a name and the address it resolves to are different hosts.
 * - {@linkcode classifyAddress} says whether an address is public, and when
 *   not, which range it is in (loopback, private, link-local…).
 *
 * @module
 */

/** One entry of an allowlist: a host, and the one port allowed when not every port is. */
export interface HttpAllowEntry {
  /** The host as the URL parser writes it: lower case, IPv6 in brackets. */
  host: string;
  /** The port allowed; every port when undefined. */
  port?: number;
}

/** An entry's shape: a host name or IPv4 address, or an IPv6 address in brackets; an optional port. */
const ENTRY = /^(\[[0-9a-f:.]+\]|(?:[a-z0-9_-]+\.)*[a-z0-9_-]+\.?)(?::(\d{1,5}))?$/;

/**
 * Reads one allowlist entry, `HOST` or `HOST:PORT` (no scheme, path or
 * wildcard), or throws a `RangeError` saying what is wrong with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHttpAllowEntry } from "./http-allowlist.ts";
 * assert.deepEqual(parseHttpAllowEntry("API.Example.com:8443"), {
 *   host: "api.example.com",
 *   port: 8443,
 * });
 * assert.deepEqual(parseHttpAllowEntry("[0::1]:8080"), { host: "[::1]", port: 8080 });
 * assert.deepEqual(parseHttpAllowEntry("localhost"), { host: "localhost" });
 * assert.throws(() => parseHttpAllowEntry("http://example.com"), RangeError);
 * assert.throws(() => parseHttpAllowEntry("example.com:0"), RangeError);
 * ```
 */
export function parseHttpAllowEntry(value: string): HttpAllowEntry {
  const text = value.trim().toLowerCase();
  const shown = JSON.stringify(value.slice(0, 100));
  const match = ENTRY.exec(text);
  if (match === null) {
    throw new RangeError(
      `${shown} is not HOST or HOST:PORT (a host name, an IPv4 address or an IPv6 address in ` +
        "brackets, without scheme, path or wildcard; e.g. api.example.com, 127.0.0.1:9000, [::1]:8080)",
    );
  }
  let host: string;
  try {
    host = new URL(`http://${match[1]}/`).hostname;
  } catch {
    throw new RangeError(`${shown}: ${match[1]} is not a valid host`);
  }
  if (match[2] === undefined) return { host };
  const port = Number(match[2]);
  if (port < 1 || port > 65535) {
    throw new RangeError(`${shown}: the port must be from 1 to 65535`);
  }
  return { host, port };
}

/**
 * Whether `value` is a valid allowlist entry ({@linkcode parseHttpAllowEntry}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isHttpAllowEntry } from "./http-allowlist.ts";
 * assert.equal(isHttpAllowEntry("127.0.0.1:9000"), true);
 * assert.equal(isHttpAllowEntry("*.example.com"), false);
 * ```
 */
export function isHttpAllowEntry(value: string): boolean {
  try {
    parseHttpAllowEntry(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The port a URL connects to: its own, else its scheme's (80, 443).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { portOf } from "./http-allowlist.ts";
 * assert.equal(portOf(new URL("https://example.com/")), 443);
 * assert.equal(portOf(new URL("http://example.com:8080/")), 8080);
 * ```
 */
export function portOf(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/**
 * An allowlist of hosts, read from entries such as `api.example.com` or
 * `127.0.0.1:9000` ({@linkcode parseHttpAllowEntry}; a bad one throws).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HttpAllowList } from "./http-allowlist.ts";
 * const list = new HttpAllowList(["example.com", "127.0.0.1:9000"]);
 * assert.equal(list.allows("example.com", 8443), true);
 * assert.equal(list.allows("127.0.0.1", 9000), true);
 * assert.equal(list.allows("127.0.0.1", 9001), false);
 * assert.equal(list.allows("localhost", 9000), false); // another host
 * assert.equal(list.allowsUrl(new URL("http://EXAMPLE.com/x")), true);
 * assert.deepEqual(list.entries.map((e) => e.host), ["example.com", "127.0.0.1"]);
 * ```
 */
export class HttpAllowList {
  /** The entries, in the form the URL parser writes hosts. */
  readonly entries: readonly HttpAllowEntry[];

  /** Reads the entries; throws a `RangeError` for a bad one. */
  constructor(entries: readonly string[]) {
    this.entries = entries.map(parseHttpAllowEntry);
  }

  /** Whether an entry names `host` (as the URL parser writes it) and allows `port`. */
  allows(host: string, port: number): boolean {
    return this.entries.some((entry) =>
      entry.host === host && (entry.port === undefined || entry.port === port)
    );
  }

  /** Whether `url`'s host and port are allowed. */
  allowsUrl(url: URL): boolean {
    return this.allows(url.hostname, portOf(url));
  }
}

/**
 * The range a non-public address is in, as messages name it ("a private
 * address"): see {@linkcode classifyAddress}.
 */
export type AddressRange =
  | "loopback"
  | "private"
  | "link-local"
  | "unspecified"
  | "shared (carrier-grade NAT)"
  | "multicast"
  | "broadcast"
  | "reserved";

/** IPv4 ranges that are not public: first address, prefix length, range. */
const IPV4_RANGES: readonly [string, number, AddressRange][] = [
  ["0.0.0.0", 8, "unspecified"], // "this network"; 0.0.0.0 reaches the local host
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared (carrier-grade NAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"], // IETF protocol assignments
  ["192.0.2.0", 24, "reserved"], // documentation
  ["192.88.99.0", 24, "reserved"], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "reserved"], // benchmarking
  ["198.51.100.0", 24, "reserved"], // documentation
  ["203.0.113.0", 24, "reserved"], // documentation
  ["224.0.0.0", 4, "multicast"],
  ["255.255.255.255", 32, "broadcast"],
  ["240.0.0.0", 4, "reserved"],
];

/** IPv6 ranges that are not public (those that embed an IPv4 address are handled apart). */
const IPV6_RANGES: readonly [string, number, AddressRange][] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["64:ff9b:1::", 48, "private"], // local-use IPv4/IPv6 translation
  ["100::", 64, "reserved"], // discard-only
  ["2001::", 32, "reserved"], // Teredo
  ["2001:db8::", 32, "reserved"], // documentation
  ["fc00::", 7, "private"], // unique local
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "private"], // site-local (deprecated)
  ["ff00::", 8, "multicast"],
];

/** The 32 bits of a dotted-quad IPv4 address, or undefined. */
function ipv4Bits(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    return undefined;
  }
  return parts.reduce((bits, part) => bits * 256 + Number(part), 0);
}

/** The 128 bits of an IPv6 address (`::`, a dotted IPv4 tail and a `%zone` allowed), or undefined. */
function ipv6Bits(text: string): bigint | undefined {
  let address = text.replace(/%.*$/, "");
  const dotted = /^(.*:)(\d+\.[\d.]*)$/.exec(address);
  if (dotted !== null) {
    const v4 = ipv4Bits(dotted[2]);
    if (v4 === undefined) return undefined;
    address = `${dotted[1]}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) return undefined;
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** Whether `bits` lie in the range of `first`/`prefix` (`width` bits in all). */
function inRange(bits: bigint, first: bigint, prefix: number, width: number): boolean {
  const shift = BigInt(width - prefix);
  return bits >> shift === first >> shift;
}

/** {@linkcode IPV4_RANGES} with their first addresses as bits. */
const IPV4_BITS = IPV4_RANGES.map(([first, prefix, range]) =>
  [BigInt(ipv4Bits(first)!), prefix, range] as const
);

/** {@linkcode IPV6_RANGES} with their first addresses as bits. */
const IPV6_BITS = IPV6_RANGES.map(([first, prefix, range]) =>
  [ipv6Bits(first)!, prefix, range] as const
);

function classifyIpv4(bits: number): AddressRange | undefined {
  return IPV4_BITS.find(([first, prefix]) => inRange(BigInt(bits), first, prefix, 32))?.[2];
}

/** IPv6 prefixes whose low bits (or bits 16–47 for 6to4) carry an IPv4 address. */
const MAPPED = ipv6Bits("::ffff:0:0")!;
const NAT64 = ipv6Bits("64:ff9b::")!;
const COMPATIBLE = 0n;
const SIX_TO_FOUR = ipv6Bits("2002::")!;

function classifyIpv6(bits: bigint): AddressRange | undefined {
  const range = IPV6_BITS.find(([first, prefix]) => inRange(bits, first, prefix, 128))?.[2];
  if (range !== undefined) return range;
  // An IPv4 address carried in an IPv6 one is judged as that IPv4 address.
  if ([MAPPED, NAT64, COMPATIBLE].some((prefix) => inRange(bits, prefix, 96, 128))) {
    return classifyIpv4(Number(bits & 0xffffffffn));
  }
  if (inRange(bits, SIX_TO_FOUR, 16, 128)) {
    return classifyIpv4(Number((bits >> 80n) & 0xffffffffn));
  }
  return undefined;
}

/**
 * The range of an IP address that is not public — loopback (127/8,
 * `::1`), private (10/8, 172.16/12, 192.168/16, `fc00::/7`), link-local
 * (169.254/16, `fe80::/10`), unspecified (0/8, `::`), shared (100.64/10,
 * carrier-grade NAT), multicast, broadcast, or reserved (documentation,
 * benchmarking, 240/4, Teredo…) — or undefined for a public one. An IPv6
 * address that carries an IPv4 one (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`,
 * 6to4 `2002::/16`, the deprecated `::a.b.c.d`) is judged by that IPv4
 * address. Brackets are allowed around an IPv6 address; anything that is
 * not an address at all counts as `"reserved"` (never as public).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyAddress } from "./http-allowlist.ts";
 * assert.equal(classifyAddress("10.0.0.5"), "private");
 * assert.equal(classifyAddress("127.0.0.1"), "loopback");
 * assert.equal(classifyAddress("[::ffff:169.254.169.254]"), "link-local");
 * assert.equal(classifyAddress("fd00::1"), "private");
 * assert.equal(classifyAddress("93.184.215.14"), undefined);
 * assert.equal(classifyAddress("2606:2800:21f:cb07:6820:80da:af6b:8b2c"), undefined);
 * assert.equal(classifyAddress("not an address"), "reserved");
 * ```
 */
export function classifyAddress(address: string): AddressRange | undefined {
  const text = address.replace(/^\[(.*)\]$/, "$1");
  const v4 = ipv4Bits(text);
  if (v4 !== undefined) return classifyIpv4(v4);
  const v6 = ipv6Bits(text);
  if (v6 !== undefined) return classifyIpv6(v6);
  return "reserved";
}

/**
 * Whether a URL's host (as the URL parser writes it) is an IP address
 * rather than a name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isIpHost } from "./http-allowlist.ts";
 * assert.equal(isIpHost(new URL("http://127.1/").hostname), true);
 * assert.equal(isIpHost("[::1]"), true);
 * assert.equal(isIpHost("localhost"), false);
 * ```
 */
export function isIpHost(host: string): boolean {
  return host.startsWith("[") || ipv4Bits(host) !== undefined;
}

/**
 * An address as a URL host: IPv6 in brackets, IPv4 as is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressAsHost } from "./http-allowlist.ts";
 * assert.equal(addressAsHost("::1"), "[::1]");
 * assert.equal(addressAsHost("10.0.0.5"), "10.0.0.5");
 * ```
 */
export function addressAsHost(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}
