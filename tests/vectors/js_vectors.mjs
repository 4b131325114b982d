#!/usr/bin/env node
// Root CID of PATH from npm ipfs-unixfs-importer 17.1.1, for what the shared js_cid.mjs cannot
// do: file modes and mtimes, and inline CIDs. Used by tests/vectors/regen.py.
//
// Usage:
//   js_vectors.mjs PATH [--profile unixfs-v0-2015|unixfs-v1-2025] [--cid-version 0|1]
//                  [--raw-leaves | --no-raw-leaves] [--chunk-size N] [--max-children N]
//                  [--trickle] [--shard-threshold B] [--wrap]
//                  [--preserve-mode] [--preserve-mtime] [--inline-limit N] [--verbose]
//
// Options mean what they mean for js_cid.mjs (Kubo 0.22 defaults without --profile; with
// --profile the profile picks CID version, raw leaves, chunk size, width and shard strategy
// unless the option is given; --cid-version 1 implies raw leaves; --trickle = trickle layout,
// leafType 'raw', no single-leaf reduction). Hidden files are always included, symlinks are
// stored as symlinks, and directories are re-checked bottom-up for sharding once all their
// children are known (the same fix as js_cid.mjs: ipfs-unixfs-importer 17.1.1 counts non-empty
// subdirectories as 0 bytes while it decides flat vs HAMT).
//
//   --preserve-mode   pass every entry's lstat mode & 0o7777 as `mode` (the importer then leaves
//                     it out of the block when it is 0644 for files/symlinks, 0755 for dirs)
//   --preserve-mtime  pass lstat's mtime as `mtime: {secs: BigInt, nsecs}`: secs = floor(ns/1e9),
//                     nsecs = the non-negative remainder, left out (undefined) when it is 0
//   --inline-limit N  inline CIDs: every block of at most N bytes gets an identity multihash
//                     instead of sha2-256. The importer has no hasher option, so this replaces
//                     sha256.digest of the multiformats module instance the importer uses.
//                     Only meaningful with CIDv1 (a CIDv0 cannot hold an identity hash).
//
// Environment: IPMIRROR_JS_DIR = the npm install dir holding node_modules/ipfs-unixfs-importer
// (default $KUBOREF/js, KUBOREF default ${XDG_CACHE_HOME:-$HOME/.cache}/kuboref, as made by
// shared/reference/setup.sh). Modules are imported by file URL, because Node resolves a bare
// `import` relative to the importing file.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

function usage (msg) {
  if (msg) console.error(`js_vectors.mjs: ${msg}`)
  console.error('usage: js_vectors.mjs PATH [--profile P] [--cid-version 0|1] [--raw-leaves|--no-raw-leaves] ' +
    '[--chunk-size N] [--max-children N] [--trickle] [--shard-threshold B] [--wrap] [--preserve-mode] ' +
    '[--preserve-mtime] [--inline-limit N] [--verbose]')
  process.exit(2)
}

const KUBOREF = path.resolve(process.env.KUBOREF ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'kuboref'))
const JSDIR = path.resolve(process.env.IPMIRROR_JS_DIR || path.join(KUBOREF, 'js'))
const NM = path.join(JSDIR, 'node_modules')
const EXPECT_VERSION = '17.1.1'

async function mod (rel) {
  const p = path.join(NM, rel)
  if (!fs.existsSync(p)) {
    console.error(`js_vectors.mjs: ${p} not found; run shared/reference/setup.sh or set IPMIRROR_JS_DIR`)
    process.exit(2)
  }
  return import(pathToFileURL(fs.realpathSync(p)).href)
}

// ---- options ----
const argv = process.argv.slice(2)
const o = {
  cidVersion: 0, rawLeaves: undefined, chunkSize: 262144, maxChildren: 174, trickle: false,
  shardThreshold: 262144, profile: undefined, wrap: false, mode: false, mtime: false,
  inlineLimit: undefined, verbose: false
}
const given = new Set()
let target
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  const next = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i] }
  const num = () => { const v = Number(next()); if (!Number.isInteger(v) || v < 0) usage(`bad number for ${a}`); return v }
  switch (a) {
    case '--profile': o.profile = next(); break
    case '--cid-version': o.cidVersion = num(); given.add('cidVersion'); break
    case '--raw-leaves': o.rawLeaves = true; given.add('rawLeaves'); break
    case '--no-raw-leaves': o.rawLeaves = false; given.add('rawLeaves'); break
    case '--chunk-size': o.chunkSize = num(); given.add('chunker'); break
    case '--max-children': o.maxChildren = num(); given.add('layout'); break
    case '--trickle': o.trickle = true; given.add('layout'); break
    case '--shard-threshold': o.shardThreshold = num(); break
    case '--wrap': o.wrap = true; break
    case '--preserve-mode': o.mode = true; break
    case '--preserve-mtime': o.mtime = true; break
    case '--inline-limit': o.inlineLimit = num(); break
    case '--verbose': o.verbose = true; break
    case '-h': case '--help': usage(); break
    default:
      if (a.startsWith('-')) usage(`unknown option ${a}`)
      if (target !== undefined) usage('only one PATH')
      target = a
  }
}
if (target === undefined) usage('PATH missing')
if (o.profile !== undefined && !['unixfs-v0-2015', 'unixfs-v1-2025'].includes(o.profile)) usage(`unknown profile ${o.profile}`)
if (o.rawLeaves === undefined) {
  o.rawLeaves = o.cidVersion === 1
  if (given.has('cidVersion')) given.add('rawLeaves') // Kubo: --cid-version 1 implies raw leaves
}

// ---- modules (one instance each: the importer's relative imports resolve to the same URLs) ----
const pkg = JSON.parse(fs.readFileSync(path.join(NM, 'ipfs-unixfs-importer', 'package.json'), 'utf8'))
if (pkg.version !== EXPECT_VERSION) {
  console.error(`js_vectors.mjs: ipfs-unixfs-importer ${pkg.version} found, ${EXPECT_VERSION} expected (internals are pinned)`)
  process.exit(2)
}
const { importer } = await mod('ipfs-unixfs-importer/dist/src/index.js')
const { fixedSize } = await mod('ipfs-unixfs-importer/dist/src/chunker/index.js')
const { balanced, trickle } = await mod('ipfs-unixfs-importer/dist/src/layout/index.js')
const { Dir } = await mod('ipfs-unixfs-importer/dist/src/dir.js')
const { DirFlat } = await mod('ipfs-unixfs-importer/dist/src/dir-flat.js')
const { default: DirSharded } = await mod('ipfs-unixfs-importer/dist/src/dir-sharded.js')
const { flatToShard } = await mod('ipfs-unixfs-importer/dist/src/flat-to-shard.js')
const { toPathComponents } = await mod('ipfs-unixfs-importer/dist/src/utils/to-path-components.js')
const { sha256 } = await mod('multiformats/dist/src/hashes/sha2.js')
const { identity } = await mod('multiformats/dist/src/hashes/identity.js')

if (o.inlineLimit !== undefined) {
  const sha = sha256.digest.bind(sha256)
  const limit = o.inlineLimit
  sha256.digest = (input, options) => input.byteLength <= limit ? identity.digest(input) : sha(input, options)
}

// ---- candidates ----
function metadata (abs) {
  if (!o.mode && !o.mtime) return {}
  const st = fs.lstatSync(abs, { bigint: true })
  const m = {}
  if (o.mode) m.mode = Number(st.mode & 0o7777n)
  if (o.mtime) {
    const ns = st.mtimeNs
    let secs = ns / 1000000000n // truncates toward zero
    if (secs * 1000000000n > ns) secs -= 1n // floor for times before 1970
    const nsecs = Number(ns - secs * 1000000000n)
    m.mtime = { secs, nsecs: nsecs === 0 ? undefined : nsecs }
  }
  return m
}

const utf8 = (s) => Buffer.from(s, 'utf8')
const byName = (a, b) => Buffer.compare(utf8(a.name), utf8(b.name))
const content = (abs) => fs.createReadStream(abs, { highWaterMark: 1 << 20 })

function * walk (abs, rel) {
  yield { path: rel, ...metadata(abs) }
  for (const e of fs.readdirSync(abs, { withFileTypes: true }).sort(byName)) {
    const a = path.join(abs, e.name)
    const r = `${rel}/${e.name}`
    if (e.isSymbolicLink()) yield { path: r, link: fs.readlinkSync(a), ...metadata(a) }
    else if (e.isDirectory()) yield * walk(a, r)
    else if (e.isFile()) yield { path: r, content: content(a), ...metadata(a) }
    else throw new Error(`unsupported file type: ${a}`)
  }
}

const st = fs.lstatSync(target)
const top = path.basename(path.resolve(target)) || 'root'
let source
if (st.isDirectory()) source = walk(target, top)
else if (st.isSymbolicLink()) source = [{ path: top, link: fs.readlinkSync(target), ...metadata(target) }]
else if (o.wrap) source = [{ path: top, content: content(target), ...metadata(target) }]
else source = [{ content: content(target), ...metadata(target) }]

// ---- importer options (same precedence rules as js_cid.mjs) ----
const opts = {
  cidVersion: o.cidVersion,
  rawLeaves: o.rawLeaves,
  wrapWithDirectory: o.wrap,
  shardSplitThresholdBytes: o.shardThreshold,
  shardSplitStrategy: 'links-bytes',
  chunker: fixedSize({ chunkSize: o.chunkSize }),
  layout: o.trickle ? trickle({ maxChildrenPerNode: o.maxChildren }) : balanced({ maxChildrenPerNode: o.maxChildren })
}
if (o.trickle) {
  opts.leafType = 'raw'
  opts.reduceSingleLeafToSelf = false
}
if (o.profile !== undefined) {
  for (const k of ['cidVersion', 'rawLeaves', 'chunker', 'layout', 'shardSplitStrategy']) if (!given.has(k)) delete opts[k]
  opts.profile = o.profile
}

// ---- tree builder: the importer's addToTree, then a bottom-up flush that re-decides flat vs HAMT
// for every directory with all of its children's CIDs and sizes known ----
async function addToTree (elem, tree, options) {
  const parts = toPathComponents(elem.path ?? '')
  let parent = tree
  let currentPath = ''
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    currentPath += `${currentPath !== '' ? '/' : ''}${part}`
    parent.dirty = true
    parent.cid = undefined
    parent.size = undefined
    if (i === parts.length - 1) {
      await parent.put(part, elem)
      tree = await flatToShard(null, parent)
    } else {
      let dir = await parent.get(part)
      if (dir == null || !(dir instanceof Dir)) {
        // a directory entry seen before its children carries the directory's mode/mtime
        dir = new DirFlat({
          root: false, dir: true, parent, parentKey: part, path: currentPath, dirty: true, flat: true,
          mtime: dir?.unixfs?.mtime, mode: dir?.unixfs?.mode
        }, options)
      }
      await parent.put(part, dir)
      parent = dir
    }
  }
  return tree
}

async function flushSettled (dir, blockstore, emit) {
  for (const { key, child } of [...dir.eachChildSeries()]) {
    if (child instanceof Dir) await dir.put(key, await flushSettled(child, blockstore, emit))
  }
  let d = dir
  if (d instanceof DirFlat) {
    d.nodeSize = undefined
    if (await d.estimateNodeSize() > d.options.shardSplitThresholdBytes) {
      d = new DirSharded({
        root: dir.root, dir: true, parent: dir.parent, parentKey: dir.parentKey, path: dir.path,
        dirty: true, flat: false, mtime: dir.mtime, mode: dir.mode
      }, dir.options)
      for (const { key, child } of dir.eachChildSeries()) await d.put(key, child)
    }
  }
  let last
  for await (const e of d.flush(blockstore)) { last = e; emit(e) }
  return last
}

function treeBuilder (importerOpts) {
  return async function * build (source, blockstore) {
    const options = { // read now: importer() has applied the profile to importerOpts
      wrapWithDirectory: importerOpts.wrapWithDirectory ?? false,
      shardSplitThresholdBytes: importerOpts.shardSplitThresholdBytes ?? 262144,
      shardSplitStrategy: importerOpts.shardSplitStrategy ?? 'links-bytes',
      shardFanoutBits: importerOpts.shardFanoutBits ?? 8,
      cidVersion: importerOpts.cidVersion ?? 1,
      fieldOrder: importerOpts.fieldOrder ?? 'links-first'
    }
    let tree = new DirFlat({ root: true, dir: true, path: '', dirty: true, flat: true }, options)
    let rootDir
    let singleRoot = false
    for await (const entry of source) {
      if (entry == null) continue
      const first = `${entry.originalPath ?? ''}`.split('/')[0]
      if (first !== '') {
        if (rootDir == null) { rootDir = first; singleRoot = true } else if (rootDir !== first) singleRoot = false
      }
      tree = await addToTree(entry, tree, options)
      if (entry.unixfs?.isDirectory() !== true) yield entry
    }
    const out = []
    const emit = (e) => out.push(e)
    const settle = async (x) => {
      if (x instanceof Dir) await flushSettled(x, blockstore, emit)
      else if (x?.unixfs?.isDirectory() === true) emit(x)
    }
    if (options.wrapWithDirectory || (singleRoot && tree.childCount() > 1)) await settle(tree)
    else for (const { child } of [...tree.eachChildSeries()]) await settle(child)
    yield * out
  }
}
opts.treeBuilder = treeBuilder(opts)

const nullBlockstore = { put: async (cid) => cid }
let root
for await (const entry of importer(source, nullBlockstore, opts)) {
  if (o.verbose) console.log(`added ${entry.cid} ${entry.path ?? ''}`)
  if (o.wrap || !st.isDirectory() || entry.path === top) root = entry
}
if (root === undefined) { console.error('js_vectors.mjs: importer yielded no root'); process.exit(1) }
if (!o.verbose) console.log(root.cid.toString())
