// notepack_check.mjs: notepack.io 3.0.1 (the msgpack of @socket.io/redis-adapter and -emitter) on
// one side of tests/msgpack_notepack_test.cpp, gw::sio_redis's msgpack on the other.
//
//  1. prints one line per case: {"name", "hex": notepack.encode(value), "json": the value as JSON
//     sees it (Date: its ISO text; undefined in a map: no key; NaN and the infinities: null),
//     "same": whether gw's encoder must write the very same bytes}, binary as {"$bin":"<hex>"};
//     then {"end":true};
//  2. reads lines {"name", "hex"} (gw's encoding of the case's "json") until stdin ends, decodes
//     each with notepack and prints {"name", "equal": decoded deep-equals "json", "same_bytes",
//     and "got": the decoded value when not equal}; then {"done":N} and exits 0.
import process from 'node:process';
import readline from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import notepack from 'notepack.io';

const text = (n, c = 'x') => c.repeat(n);
const bytes = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));
const keys16 = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));

// [name, value, same, json?]: json overrides the value's JSON form; same = gw must write notepack's bytes exactly (maps here have sorted keys,
// the order nlohmann::json keeps them in).
const cases = [
  ['zero', 0, true], ['fixint_max', 127, true], ['uint8', 128, true], ['uint8_max', 255, true],
  ['uint16', 256, true], ['uint16_max', 65535, true], ['uint32', 65536, true], ['uint32_max', 4294967295, true],
  ['uint64', 4294967296, true], ['max_safe', Number.MAX_SAFE_INTEGER, true],
  ['neg_fixint', -1, true], ['neg_fixint_min', -32, true], ['int8', -33, true], ['int8_min', -128, true],
  ['int16', -129, true], ['int16_min', -32768, true], ['int32', -32769, true], ['int32_min', -2147483648, true],
  ['int64', -2147483649, true], ['min_safe', Number.MIN_SAFE_INTEGER, true],
  ['float', 1.5, true], ['neg_float', -0.25, true], ['small_float', 1.5e-300, true], ['tiny_float', 5e-324, true],
  // A notepack 3.0.1 quirk: an integral number of 2^64 or more is written as uint64 and wraps, so
  // 1e300 arrives as 0 (`cf 00...`). gw writes float64 there; the case pins what Node peers send.
  ['quirk_1e300', 1e300, false, 0],
  ['nan', NaN, false], ['infinity', Infinity, false],
  ['empty_str', '', true], ['str31', text(31), true], ['str32', text(32), true], ['str255', text(255), true],
  ['str256', text(256), true], ['str65535', text(65535), true], ['str65536', text(65536), true],
  ['utf8', 'κόσμε 🙂 ☃', true],
  ['bin0', Buffer.alloc(0), true], ['bin5', bytes(5), true], ['bin256', bytes(256), true],
  ['bin65536', bytes(65536), true], ['arraybuffer', new Uint8Array([9, 8, 7]).buffer, true],
  ['uint8array', new Uint8Array([1, 2, 3]), true],
  ['null', null, true], ['true', true, true], ['false', false, true],
  ['empty_array', [], true], ['empty_map', {}, true],
  ['array15', Array.from({ length: 15 }, (_, i) => i), true],
  ['array16', Array.from({ length: 16 }, (_, i) => i - 8), true],
  ['array65536', Array.from({ length: 65536 }, (_, i) => i & 1), true],
  ['map16', keys16, true],
  ['nested', { a: [1, { b: [true, null, 'c'], d: { e: -1.5 } }], bin: bytes(3), z: [[[]], {}] }, true],
  ['date', new Date(Date.UTC(2024, 4, 1, 12, 0, 0, 123)), false],
  ['date_whole_second', new Date(Date.UTC(1999, 11, 31, 23, 59, 59)), false],
  ['undefined_in_map', { a: undefined, b: 1 }, true],
  ['undefined_in_array', [undefined, 1], true],
];

function plain(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('hex') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('hex') };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (v instanceof Date) return v.toJSON();
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  if (Array.isArray(v)) return v.map((e) => (e === undefined ? null : plain(e)));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).filter(([, e]) => e !== undefined).map(([k, e]) => [k, plain(e)]));
  return v;
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const byName = new Map();
for (const [name, value, same, ...override] of cases) {
  const hex = notepack.encode(value).toString('hex');
  const json = override.length ? override[0] : plain(value);
  byName.set(name, { json, hex, same });
  out({ name, hex, json, same });
}
out({ end: true });

let done = 0;
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  const { name, hex } = JSON.parse(line);
  const want = byName.get(name);
  let got;
  try {
    got = plain(notepack.decode(Buffer.from(hex, 'hex')));
  } catch (e) {
    got = { $error: String(e) };
  }
  const equal = want !== undefined && isDeepStrictEqual(got, want.json);
  out({ name, equal, same_bytes: want?.hex === hex, ...(equal ? {} : { got }) });
  ++done;
});
lines.on('close', () => {
  out({ done });
  process.exit(0);
});
