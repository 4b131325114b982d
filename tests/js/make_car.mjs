// Import a file or directory with ipfs-unixfs-importer and write it as a CARv1 with @ipld/car.
//
// Usage: node make_car.mjs SRC OUT.car [--cid-version 0|1] [--raw-leaves true|false]
//                                      [--profile unixfs-v0-2015|unixfs-v1-2025]
//                                      [--chunk-size N] [--max-links N]
//
// Every entry under SRC is imported (hidden names included, symlinks stored as symlinks, empty
// directories kept), with paths "basename(SRC)/...", so the root is SRC's own node. Options that
// are not given keep the importer's defaults. The CAR holds the DAG under the root in depth-first
// pre-order, each block once. Prints the root CID on stdout.
import fs from 'node:fs'
import path from 'node:path'
import { once } from 'node:events'
import { CarWriter } from '@ipld/car/writer'
import * as dagPB from '@ipld/dag-pb'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const args = process.argv.slice(2)
const positional = []
const options = {}
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--cid-version') {
    options.cidVersion = Number(args[++i])
  } else if (a === '--raw-leaves') {
    options.rawLeaves = args[++i] === 'true'
  } else if (a === '--profile') {
    options.profile = args[++i]
  } else if (a === '--chunk-size') {
    options.chunker = fixedSize({ chunkSize: Number(args[++i]) })
  } else if (a === '--max-links') {
    options.layout = balanced({ maxChildrenPerNode: Number(args[++i]) })
  } else {
    positional.push(a)
  }
}
if (positional.length !== 2) {
  console.error('usage: node make_car.mjs SRC OUT.car [--cid-version N] [--raw-leaves B] [--profile P] ' +
    '[--chunk-size N] [--max-links N]')
  process.exit(2)
}
const [src, out] = positional

const byteOrder = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))

function * candidates (abs, rel) {
  const st = fs.lstatSync(abs)
  if (st.isSymbolicLink()) {
    yield { path: rel, link: fs.readlinkSync(abs) }
  } else if (st.isDirectory()) {
    yield { path: rel }
    for (const name of fs.readdirSync(abs).sort(byteOrder)) {
      yield * candidates(path.join(abs, name), `${rel}/${name}`)
    }
  } else if (st.isFile()) {
    yield { path: rel, content: fs.readFileSync(abs) }
  } else {
    throw new Error(`${abs}: not a file, directory or symlink`)
  }
}

const blockstore = new MemoryBlockstore()
let root
for await (const entry of importer(candidates(src, path.basename(src)), blockstore, options)) {
  root = entry.cid
}

async function getBlock (cid) {
  const chunks = []
  for await (const chunk of blockstore.get(cid)) {
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

const { writer, out: carBytes } = CarWriter.create([root])
const sink = fs.createWriteStream(out)
const piping = (async () => {
  for await (const chunk of carBytes) {
    if (!sink.write(chunk)) {
      await once(sink, 'drain')
    }
  }
  sink.end()
  await once(sink, 'finish')
})()

const seen = new Set()
const stack = [root]
while (stack.length > 0) {
  const cid = stack.pop()
  const key = cid.toString()
  if (seen.has(key) || cid.multihash.code === 0x00) {
    continue
  }
  seen.add(key)
  const bytes = await getBlock(cid)
  await writer.put({ cid, bytes })
  if (cid.code === dagPB.code) {
    const links = dagPB.decode(bytes).Links
    for (let i = links.length - 1; i >= 0; i--) {
      stack.push(links[i].Hash)
    }
  }
}
await writer.close()
await piping
process.stdout.write(root.toString() + '\n')
