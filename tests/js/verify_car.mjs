// Read a CAR file with @ipld/car and check every block against its CID.
//
// Usage: node verify_car.mjs FILE.car
//
// Prints one JSON object on stdout:
//   {"roots": [CID...], "blocks": N, "unique": N, "ok": bool, "errors": [...], "cids": [...]}
// - sha2-256 blocks are re-hashed with multiformats; identity CIDs must have digest == bytes;
//   any other hash function is reported as an error (the CARs under test only use these two).
// - dag-pb blocks (0x70) must also decode with @ipld/dag-pb (which rejects non-canonical forms).
// Exit status: 0 when ok, 1 when a block failed a check or the CAR could not be parsed.
import fs from 'node:fs'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPB from '@ipld/dag-pb'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

const file = process.argv[2]
if (file == null) {
  console.error('usage: node verify_car.mjs FILE.car')
  process.exit(2)
}

const result = { roots: [], blocks: 0, unique: 0, ok: true, errors: [], cids: [] }
const seen = new Set()
try {
  const iter = await CarBlockIterator.fromIterable(fs.createReadStream(file))
  result.roots = (await iter.getRoots()).map((c) => c.toString())
  for await (const { cid, bytes } of iter) {
    const key = cid.toString()
    result.blocks++
    result.cids.push(key)
    if (!seen.has(key)) {
      seen.add(key)
      result.unique++
    }
    const mh = cid.multihash
    let good
    if (mh.code === sha256.code) {
      const digest = await sha256.digest(bytes)
      good = equals(digest.digest, mh.digest)
    } else if (mh.code === 0x00) {
      good = equals(mh.digest, bytes)
    } else {
      result.errors.push(`${key}: unsupported hash function 0x${mh.code.toString(16)}`)
      result.ok = false
      continue
    }
    if (!good) {
      result.errors.push(`${key}: bytes do not match the CID`)
      result.ok = false
      continue
    }
    if (cid.code === dagPB.code) {
      try {
        dagPB.decode(bytes)
      } catch (e) {
        result.errors.push(`${key}: not valid dag-pb: ${e.message}`)
        result.ok = false
      }
    }
  }
} catch (e) {
  result.ok = false
  result.errors.push(`cannot read CAR: ${e.message}`)
}
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(result.ok ? 0 : 1)
