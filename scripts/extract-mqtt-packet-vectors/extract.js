#!/usr/bin/env node
'use strict'

// Extracts the test vectors of mqtt-packet's own test suite (test.js, shipped
// in the npm tarball) into one JSON document on stdout. A summary goes to
// stderr.
//
// How: test.js is evaluated as a CommonJS module with
//   * its test helper functions (testParseGenerate, testParseError, ...)
//     replaced by recorders: recorder function declarations are appended to
//     the source, and since all of them are hoisted into the same function
//     scope, the later (appended) declaration wins;
//   * `require('tape')` answered by a fake tape whose `test(name, fn)` only
//     records the ad-hoc tests written directly in test.js; those are run
//     afterwards with a fake `t` against an instrumented mqtt-packet that
//     records every generate / writeToStream / parse call and its result.
// Every recorded case is then checked against mqtt-packet itself, starting
// from the JSON-decoded form of the case (so a lossy extraction shows up).
//
// Usage: node extract.js > ../../crates/midge-codec/tests/fixtures/mqtt-packet-v9.json

const fs = require('fs')
const path = require('path')
const vm = require('vm')
const Module = require('module')
const util = require('util')

const pkgJsonPath = require.resolve('mqtt-packet/package.json')
const pkgDir = path.dirname(pkgJsonPath)
const VERSION = require(pkgJsonPath).version
const TEST_PATH = path.join(pkgDir, 'test.js')
if (!fs.existsSync(TEST_PATH)) {
  console.error(`error: ${TEST_PATH} not found; the mqtt-packet tarball no longer ships test.js`)
  process.exit(1)
}
const mqtt = require('mqtt-packet')
const testRequire = Module.createRequire(TEST_PATH)

// Buffers longer than this that are a (short) prefix followed by a run of one
// byte value are written in a compact form instead of hex (test.js has two
// 256 MiB all-zero payloads).
const COMPACT_MIN = 1 << 20

// ---------------------------------------------------------------------------
// JSON encoding of JS values

function compactForm (buf) {
  if (buf.length <= COMPACT_MIN) return null
  const fill = buf[buf.length - 1]
  let i = buf.length - 1
  while (i > 0 && buf[i - 1] === fill) i--
  if (i > 4096) return null
  return {
    $prefix: buf.subarray(0, i).toString('hex'),
    $fill: fill.toString(16).padStart(2, '0'),
    $len: buf.length
  }
}

// Top-level `bytes`: lowercase hex string, or the compact object.
function encBytes (buf) {
  if (buf == null) return null
  return compactForm(buf) || buf.toString('hex')
}

// Packet values: Buffers as {"$hex": ...} (or the compact object), undefined
// object members dropped (noted in `lossy`), everything else as is.
function encValue (v, at, lossy) {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v)
    return compactForm(b) || { $hex: b.toString('hex') }
  }
  if (v === undefined) { lossy.push(`${at}: undefined`); return null }
  if (typeof v === 'number' && !Number.isFinite(v)) { lossy.push(`${at}: ${v}`); return null }
  if (typeof v === 'number' && Object.is(v, -0)) { lossy.push(`${at}: -0`); return 0 }
  if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
    lossy.push(`${at}: ${typeof v}`); return null
  }
  if (Array.isArray(v)) return v.map((x, i) => encValue(x, `${at}[${i}]`, lossy))
  if (v !== null && typeof v === 'object') {
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null && v.constructor && v.constructor.name !== 'Packet') {
      lossy.push(`${at}: ${v.constructor.name} instance encoded as plain object`)
    }
    const out = {}
    for (const k of Object.keys(v)) {
      if (v[k] === undefined) { lossy.push(`${at}.${k}: undefined member dropped`); continue }
      out[k] = encValue(v[k], `${at}.${k}`, lossy)
    }
    return out
  }
  return v
}

function decBytes (x) {
  if (x == null) return null
  if (typeof x === 'string') return Buffer.from(x, 'hex')
  return decCompact(x)
}

function decCompact (x) {
  const prefix = Buffer.from(x.$prefix, 'hex')
  const b = Buffer.alloc(x.$len, parseInt(x.$fill, 16))
  prefix.copy(b)
  return b
}

function decValue (v) {
  if (Array.isArray(v)) return v.map(decValue)
  if (v !== null && typeof v === 'object') {
    if (typeof v.$hex === 'string' && Object.keys(v).length === 1) return Buffer.from(v.$hex, 'hex')
    if (typeof v.$prefix === 'string' && typeof v.$len === 'number') return decCompact(v)
    const out = {}
    for (const k of Object.keys(v)) out[k] = decValue(v[k])
    return out
  }
  return v
}

function clone (v) { return decValue(encValue(v, '', [])) }

// ---------------------------------------------------------------------------
// Comparison helpers (key order is ignored everywhere)

// Canonical string: Buffers as hex (or compact), undefined kept as a marker.
function canon (v) {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.from(v)
    const c = compactForm(b)
    return c ? `<buf ${c.$prefix}+${c.$fill}*${c.$len}>` : `<buf ${b.toString('hex')}>`
  }
  if (v === undefined) return '<undefined>'
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

// Paths where a and b differ (strict).
function diff (a, b, at = '', out = []) {
  if (canon(a) === canon(b)) return out
  const isObj = x => x !== null && typeof x === 'object' && !Buffer.isBuffer(x)
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const k of keys) {
      if (!(k in a)) out.push(`${at}.${k}: missing in expected, parsed has ${short(b[k])}`)
      else if (!(k in b)) out.push(`${at}.${k}: expected ${short(a[k])}, missing in parsed`)
      else diff(a[k], b[k], `${at}.${k}`, out)
    }
  } else {
    out.push(`${at || '.'}: expected ${short(a)}, got ${short(b)}`)
  }
  return out
}

function short (v) {
  const s = canon(v)
  return s.length > 80 ? s.slice(0, 77) + '...' : s
}

// deep-equal's non-strict mode, as used by tape's deepLooseEqual: same key
// sets, primitives compared with ==, prototypes ignored.
function looseEqual (a, b) {
  if (a == b) return true // eslint-disable-line eqeqeq
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b)
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Buffer.isBuffer(a) !== Buffer.isBuffer(b)) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every(k => Object.prototype.hasOwnProperty.call(b, k) && looseEqual(a[k], b[k]))
}

// ---------------------------------------------------------------------------
// Running mqtt-packet

function runParse (chunks, opts) {
  const parser = mqtt.parser(opts)
  const calls = []
  let cur
  parser.on('packet', p => cur.packets.push(p))
  parser.on('error', e => cur.errors.push(e.message))
  for (const chunk of chunks) {
    cur = { packets: [], errors: [], returned: undefined }
    cur.returned = parser.parse(chunk)
    calls.push(cur)
  }
  return calls
}

function runGenerate (packet, opts) {
  try {
    return { bytes: mqtt.generate(packet, opts) }
  } catch (e) {
    return { error: e.message }
  }
}

function runWriteToStream (packet, opts) {
  const { Writable } = testRequire('readable-stream')
  const stream = new Writable()
  const written = []
  const errors = []
  stream.write = chunk => { written.push(Buffer.from(chunk)); return true }
  stream.on('error', e => errors.push(e.message))
  const returned = mqtt.writeToStream(packet, stream, opts)
  return new Promise(resolve => setImmediate(() =>
    resolve({ returned, bytes: Buffer.concat(written), errors })))
}

// ---------------------------------------------------------------------------
// Recording

const HELPERS = [
  'testParseGenerate',
  'testGenerateOnly',
  'testParseOnly',
  'testParseError',
  'testGenerateError',
  'testGenerateErrorMultipleCmds',
  'testParseGenerateDefaults',
  'testParseAndGenerate',
  'testWriteToStreamError'
]
const NON_HELPERS = ['normalExpectedObject']

const entries = [] // in call order: {type: 'helper', ...} | {type: 'tape', ...}

const source = fs.readFileSync(TEST_PATH, 'utf8')
const sourceLines = source.split('\n').length

{
  const declared = [...source.matchAll(/^function\s+(\w+)\s*\(/gm)].map(m => m[1])
  const unknown = declared.filter(n => !HELPERS.includes(n) && !NON_HELPERS.includes(n))
  const missing = HELPERS.filter(n => !declared.includes(n))
  if (unknown.length) {
    console.error(`error: test.js declares helpers this script does not know: ${unknown.join(', ')}`)
    process.exit(1)
  }
  if (missing.length) console.error(`note: helpers not declared in this test.js: ${missing.join(', ')}`)
}

function callerLine () {
  const stack = new Error().stack.split('\n')
  for (const fr of stack) {
    const m = fr.match(/test\.js:(\d+):\d+\)?$/)
    if (m && Number(m[1]) <= sourceLines) return Number(m[1])
  }
  return null
}

// normalExpectedObject from test.js: the parse test of testParseGenerate runs
// first and mutates the object in place, so the generate/mirror tests see the
// normalised object too.
function normalExpectedObject (object) {
  if (object.username != null) object.username = object.username.toString()
  if (object.password != null) object.password = Buffer.from(object.password)
  return object
}

function record (helper, args) {
  const line = callerLine()
  const push = (kind, f) => entries.push(Object.assign({ type: 'helper', helper, kind, line }, f))
  switch (helper) {
    case 'testParseGenerate': {
      const [name, object, buffer, opts] = args
      normalExpectedObject(object)
      push('parse_generate', { name, packet: object, bytes: buffer, opts })
      break
    }
    case 'testGenerateOnly': {
      const [name, object, buffer, opts] = args
      push('generate_only', { name, packet: object, bytes: buffer, opts })
      break
    }
    case 'testParseOnly': {
      const [name, object, buffer, opts] = args
      push('parse_only', { name, packet: object, bytes: buffer, opts })
      break
    }
    case 'testParseError': {
      const [expected, fixture, opts] = args
      push('parse_error', { name: expected, bytes: fixture, error: expected, opts })
      break
    }
    case 'testGenerateError': {
      const [expected, fixture, opts, name] = args
      push('generate_error', { name: name || expected, packet: fixture, error: expected, opts })
      break
    }
    case 'testGenerateErrorMultipleCmds': {
      const [cmds, expected, fixture, opts] = args
      for (const cmd of cmds) {
        const obj = Object.assign({}, fixture)
        obj.cmd = cmd
        push('generate_error', { name: `${expected} on ${cmd}`, packet: obj, error: expected, opts })
      }
      break
    }
    case 'testParseGenerateDefaults': {
      const [name, object, buffer, generated, opts] = args
      push('parse_generate_defaults', { name, packet: object, parsedPacket: generated, bytes: buffer, opts })
      break
    }
    case 'testParseAndGenerate': {
      const [name, object, buffer, opts] = args
      push('parse_and_generate', { name, packet: object, bytes: buffer, opts })
      break
    }
    case 'testWriteToStreamError': {
      const [expected, fixture] = args
      push('write_to_stream_error', { name: `writeToStream ${expected} error`, label: expected, packet: fixture })
      break
    }
    default:
      throw new Error(`unhandled helper ${helper}`)
  }
}

// Fake tape: ad-hoc tests are recorded and run later.
function fakeTape (name, fn) {
  if (typeof name === 'function') { fn = name; name = '(anonymous)' }
  entries.push({ type: 'tape', name, fn, line: callerLine() })
}
fakeTape.test = fakeTape

// Instrumented mqtt-packet for the ad-hoc tests: records every call.
let transcript = null
const instrumented = {
  parser (opts) {
    const parser = mqtt.parser(opts)
    const id = transcript ? transcript.parsers++ : -1
    let cur = null
    parser.on('packet', p => { if (cur) cur.packets.push(clone(p)) })
    parser.on('error', e => { if (cur) cur.errors.push(e.message) })
    const parse = parser.parse.bind(parser)
    parser.parse = chunk => {
      cur = { op: 'parse', parser: id, opts, chunk: Buffer.from(chunk), packets: [], errors: [] }
      if (transcript) transcript.ops.push(cur)
      cur.returned = parse(chunk)
      return cur.returned
    }
    return parser
  },
  generate (packet, opts) {
    const op = { op: 'generate', packet: clone(packet), lossy: [], opts }
    encValue(packet, 'packet', op.lossy)
    const out = mqtt.generate(packet, opts)
    op.bytes = Buffer.from(out)
    if (transcript) transcript.ops.push(op)
    return out
  },
  writeToStream: Object.defineProperty(function writeToStream (packet, stream, opts) {
    const op = { op: 'writeToStream', packet: clone(packet), lossy: [], opts, chunks: [] }
    encValue(packet, 'packet', op.lossy)
    const write = stream.write
    stream.write = function (chunk, ...rest) {
      op.chunks.push(Buffer.from(chunk))
      return write.call(this, chunk, ...rest)
    }
    op.returned = mqtt.writeToStream(packet, stream, opts)
    stream.write = write
    if (transcript) transcript.ops.push(op)
    return op.returned
  }, 'cacheNumbers', {
    get () { return mqtt.writeToStream.cacheNumbers },
    set (v) { mqtt.writeToStream.cacheNumbers = v }
  })
}

function fakeRequire (id) {
  if (id === 'tape') return fakeTape
  if (id === './' || id === '.' || id === './mqtt' || id === './mqtt.js') return instrumented
  return testRequire(id)
}

// Evaluate test.js with recorders appended.
{
  const recorders = HELPERS.map(h =>
    `function ${h} (...args) { return __record(${JSON.stringify(h)}, args) }`).join('\n')
  const wrapped = '(function (exports, require, module, __filename, __dirname, __record) {' +
    source + '\n;\n' + recorders + '\n})'
  const fn = vm.runInThisContext(wrapped, { filename: TEST_PATH })
  const mod = { exports: {} }
  fn.call(mod.exports, mod.exports, fakeRequire, mod, TEST_PATH, pkgDir, record)
}

// Fake `t` for the ad-hoc tests.
function makeT (name) {
  const st = { planned: null, count: 0, failures: [], ended: false, done: null }
  const finished = new Promise(resolve => { st.done = resolve })
  const check = () => { if (st.ended || (st.planned !== null && st.count >= st.planned)) st.done() }
  const assert = (ok, msg) => {
    st.count++
    if (!ok) st.failures.push(msg || 'assertion failed')
    check()
  }
  const t = {
    plan (n) { st.planned = n },
    end () { st.ended = true; check() },
    comment () {},
    pass (msg) { assert(true, msg) },
    fail (msg) { assert(false, `fail: ${msg}`) },
    ok (v, msg) { assert(!!v, msg) },
    notOk (v, msg) { assert(!v, msg) },
    equal (a, b, msg) { assert(a === b, `${msg || 'equal'}: ${short(a)} !== ${short(b)}`) },
    deepEqual (a, b, msg) { assert(util.isDeepStrictEqual(a, b) || canon(a) === canon(b), `${msg || 'deepEqual'}: ${diff(b, a).join('; ')}`) },
    deepLooseEqual (a, b, msg) { assert(looseEqual(a, b), `${msg || 'deepLooseEqual'}: ${diff(b, a).join('; ')}`) }
  }
  t.true = t.ok
  t.false = t.notOk
  t.is = t.strictEqual = t.equal
  t.same = t.deepEqual
  return { t, st, finished }
}

async function runTapeEntry (e) {
  transcript = { ops: [], parsers: 0 }
  const { t, st, finished } = makeT(e.name)
  try {
    e.fn(t)
  } catch (err) {
    st.failures.push(`threw: ${err.message}`)
    st.done()
  }
  const timedOut = await Promise.race([
    finished.then(() => false),
    new Promise(resolve => setTimeout(() => resolve(true), 2000))
  ])
  await new Promise(resolve => setImmediate(resolve))
  e.ops = transcript.ops
  e.failures = st.failures
  if (timedOut) e.failures.push(`did not finish (plan ${st.planned}, ${st.count} assertions)`)
  transcript = null
}

// ---------------------------------------------------------------------------
// Building the output cases

function protocolVersionOf (opts, ...packets) {
  if (opts && typeof opts.protocolVersion === 'number') return opts.protocolVersion
  for (const p of packets) {
    if (p && typeof p === 'object' && typeof p.protocolVersion === 'number') return p.protocolVersion
  }
  return null
}

function helperCase (e) {
  const lossy = []
  const c = {
    kind: e.kind,
    helper: e.helper,
    name: e.name,
    line: e.line,
    protocol_version: protocolVersionOf(e.opts, e.packet, e.parsedPacket),
    bytes: encBytes(e.bytes),
    packet: e.packet === undefined ? null : encValue(e.packet, 'packet', lossy),
    error: e.error === undefined ? null : e.error,
    opts: e.opts === undefined ? null : encValue(e.opts, 'opts', lossy)
  }
  if (e.parsedPacket !== undefined) c.parsed_packet = encValue(e.parsedPacket, 'parsed_packet', lossy)
  if (e.label !== undefined) c.label = e.label
  if (lossy.length) c.lossy = lossy
  return c
}

function tapeCases (e) {
  const cases = []
  const base = (kind, extra) => Object.assign({ kind, helper: 'test', name: e.name, line: e.line }, extra)
  const gens = e.ops.filter(o => o.op === 'generate' || o.op === 'writeToStream')
  for (const o of gens) {
    const lossy = o.lossy.slice()
    const bytes = o.op === 'generate' ? o.bytes : Buffer.concat(o.chunks)
    const c = base(o.op === 'generate' ? 'tape_generate' : 'tape_write_to_stream', {
      protocol_version: protocolVersionOf(o.opts, o.packet),
      bytes: encBytes(bytes),
      packet: encValue(o.packet, 'packet', lossy),
      error: null,
      opts: o.opts === undefined ? null : encValue(o.opts, 'opts', lossy)
    })
    if (lossy.length) c.lossy = lossy
    cases.push(c)
  }
  const parsers = [...new Set(e.ops.filter(o => o.op === 'parse').map(o => o.parser))]
  for (const id of parsers) {
    const calls = e.ops.filter(o => o.op === 'parse' && o.parser === id)
    const lossy = []
    const packets = calls.flatMap(o => o.packets)
    const errors = calls.flatMap(o => o.errors)
    const opts = calls[0].opts
    const c = base('tape_parse', {
      protocol_version: protocolVersionOf(opts, ...packets),
      bytes: encBytes(Buffer.concat(calls.map(o => o.chunk))),
      packet: packets.length === 1 ? encValue(packets[0], 'packet', lossy) : null,
      error: errors.length ? errors[0] : null,
      opts: opts === undefined ? null : encValue(opts, 'opts', lossy),
      packets: packets.map((p, i) => encValue(p, `packets[${i}]`, lossy)),
      chunks: calls.map(o => ({
        bytes: encBytes(o.chunk),
        returned: o.returned,
        packets: o.packets.map(p => encValue(p, 'chunk.packet', lossy)),
        errors: o.errors
      }))
    })
    if (lossy.length) c.lossy = lossy
    cases.push(c)
  }
  if (cases.length > 1) cases.forEach((c, i) => { c.name = `${e.name} #${i + 1}` })
  return cases
}

// ---------------------------------------------------------------------------
// Sanity checks against mqtt-packet, starting from the JSON-decoded case.

function stripForParseGenerate (p) {
  if (p.cmd !== 'publish') { delete p.topic; delete p.payload }
  return p
}

function checkParse (bytes, opts, expected, mode) {
  const [call] = runParse([bytes], opts)
  if (call.errors.length) return `mismatch: parse error "${call.errors[0]}"`
  if (call.packets.length !== 1) return `mismatch: ${call.packets.length} packets`
  if (call.returned !== 0) return `mismatch: parse returned ${call.returned}`
  let got = call.packets[0]
  if (mode === 'parse_generate') got = stripForParseGenerate(got)
  if (canon(got) === canon(expected)) return 'ok'
  const d = diff(expected, got)
  if (mode === 'parse_generate' && looseEqual(got, expected)) return `ok_loose: ${d.join('; ')}`
  return `mismatch: ${d.join('; ')}`
}

function checkGenerate (packet, opts, bytes) {
  const r = runGenerate(packet, opts)
  if (r.error) return `mismatch: generate threw "${r.error}"`
  if (r.bytes.equals(bytes)) return 'ok'
  return `mismatch: generated ${short(r.bytes)}`
}

async function checkCase (c) {
  const bytes = decBytes(c.bytes)
  const packet = decValue(c.packet)
  const opts = c.opts === null ? undefined : decValue(c.opts)
  const res = {}
  switch (c.kind) {
    case 'parse_generate':
      res.parse = checkParse(bytes, opts, packet, 'parse_generate')
      res.generate = checkGenerate(packet, opts, bytes)
      break
    case 'parse_only':
      res.parse = checkParse(bytes, opts, packet, 'strict')
      break
    case 'generate_only':
    case 'tape_generate':
      res.generate = checkGenerate(packet, opts, bytes)
      break
    case 'parse_and_generate':
      res.parse = checkParse(bytes, opts, packet, 'strict')
      res.generate = checkGenerate(packet, opts, bytes)
      break
    case 'parse_generate_defaults':
      res.parse = checkParse(bytes, opts, decValue(c.parsed_packet), 'strict')
      res.generate = checkGenerate(packet, opts, bytes)
      break
    case 'parse_error': {
      const [call] = runParse([bytes], opts)
      if (call.errors[0] === c.error && call.packets.length === 0) res.parse = 'ok'
      else res.parse = `mismatch: errors ${JSON.stringify(call.errors)}, ${call.packets.length} packets`
      break
    }
    case 'generate_error': {
      const r = runGenerate(packet, opts)
      res.generate = r.error === c.error ? 'ok' : `mismatch: ${r.error ? `threw "${r.error}"` : 'did not throw'}`
      break
    }
    case 'write_to_stream_error':
    case 'tape_write_to_stream': {
      const r = await runWriteToStream(packet, opts)
      if (c.kind === 'write_to_stream_error') {
        if (r.returned === false && r.errors.length === 1 && r.bytes.length === 0) {
          c.error = r.errors[0]
          res.write_to_stream = 'ok'
        } else {
          res.write_to_stream = `mismatch: returned ${r.returned}, errors ${JSON.stringify(r.errors)}, ${r.bytes.length} bytes`
        }
      } else {
        res.write_to_stream = r.bytes.equals(bytes) && r.errors.length === 0
          ? 'ok'
          : `mismatch: errors ${JSON.stringify(r.errors)}, wrote ${short(r.bytes)}`
      }
      break
    }
    case 'tape_parse': {
      const chunks = c.chunks.map(x => decBytes(x.bytes))
      const calls = runParse(chunks, opts)
      const got = calls.map(x => ({ returned: x.returned, packets: x.packets, errors: x.errors }))
      const want = c.chunks.map(x => ({ returned: x.returned, packets: decValue(x.packets), errors: x.errors }))
      res.parse = canon(got) === canon(want) ? 'ok' : `mismatch: ${diff(want, got).join('; ')}`
      break
    }
    default:
      throw new Error(`no check for kind ${c.kind}`)
  }
  return res
}

// ---------------------------------------------------------------------------

async function main () {
  const cases = []
  const uncaptured = []
  for (const e of entries) {
    if (e.type === 'helper') { cases.push(helperCase(e)); continue }
    await runTapeEntry(e)
    if (e.failures.length) {
      console.error(`warning: ad-hoc test "${e.name}" had failing assertions under the fake t: ${e.failures.join(' | ')}`)
    }
    const tc = tapeCases(e)
    if (tc.length === 0) {
      uncaptured.push({
        name: e.name,
        line: e.line,
        reason: 'ad-hoc test() that makes no generate/writeToStream/parse call through mqtt-packet: no wire vector'
      })
    }
    if (e.failures.length) tc.forEach(c => { c.fake_t_failures = e.failures })
    cases.push(...tc)
  }

  for (const [i, c] of cases.entries()) c.id = i

  // Round-trip check through JSON text first, so checks see exactly what a
  // consumer of the file sees.
  const roundTripped = JSON.parse(JSON.stringify(cases))
  const mismatches = []
  for (const [i, c] of roundTripped.entries()) {
    const res = await checkCase(c)
    cases[i].check = res
    if (c.kind === 'write_to_stream_error') cases[i].error = c.error
    for (const [k, v] of Object.entries(res)) {
      if (v !== 'ok') mismatches.push(`#${i} ${c.kind} "${c.name}" (test.js:${c.line}) ${k}: ${v}`)
    }
  }

  // Put id first and check last for readability.
  const ordered = cases.map(c => {
    const { id, kind, helper, name, line, protocol_version: pv, bytes, packet, error, opts, check, ...rest } = c
    return Object.assign({ id, kind, helper, name, line, protocol_version: pv, bytes, packet, error, opts }, rest, { check })
  })

  const doc = {
    source: `mqtt-packet@${VERSION} test.js`,
    generator: 'scripts/extract-mqtt-packet-vectors/extract.js',
    encoding: {
      bytes: 'lowercase hex string; for buffers > 1 MiB that end in a long run of one byte value: {"$prefix": hex, "$fill": "00", "$len": total length}',
      buffers_in_packet: '{"$hex": hex}, or the same compact {"$prefix","$fill","$len"} object',
      undefined_members: 'dropped (listed in the case\'s "lossy" field)'
    },
    cases: ordered,
    uncaptured
  }
  process.stdout.write(JSON.stringify(doc, null, 1) + '\n')

  // Summary.
  const count = (f) => ordered.reduce((m, c) => { const k = f(c); m[k] = (m[k] || 0) + 1; return m }, {})
  console.error(`mqtt-packet@${VERSION}: ${ordered.length} cases`)
  console.error('by kind:', JSON.stringify(count(c => c.kind)))
  console.error('by protocol_version:', JSON.stringify(count(c => String(c.protocol_version))))
  console.error('by kind/protocol_version:', JSON.stringify(count(c => `${c.kind}/${c.protocol_version}`)))
  console.error(`uncaptured ad-hoc tests: ${uncaptured.length}`)
  for (const u of uncaptured) console.error(`  - "${u.name}" (test.js:${u.line}): ${u.reason}`)
  const lossy = ordered.filter(c => c.lossy)
  console.error(`cases with lossy JSON encoding: ${lossy.length}`)
  for (const c of lossy) console.error(`  - #${c.id} "${c.name}": ${c.lossy.join('; ')}`)
  console.error(`check results not "ok": ${mismatches.length}`)
  for (const m of mismatches) console.error(`  - ${m}`)
}

main().catch(err => { console.error(err); process.exit(1) })
