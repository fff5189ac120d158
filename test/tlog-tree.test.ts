import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { expect } from 'chai';
import { Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { EMPTY_ROOT, leafHash, referenceRoot } from '../registry/tlog/merkle.ts';
import { checkpointText, keyHash, openCheckpoint, signedNote, verifierKey } from '../registry/tlog/signed-note.ts';
import { TileBuilder, tileWidth, type Tile } from '../registry/tlog/tile-builder.ts';
import { formatIndex, parseTilePath } from '../registry/tlog/tile-path.ts';
import { edgeFromStored, splitHashes, tileRecord } from '../registry/tlog/transparency-log.ts';
import { createTestToken } from './support/softhsm.ts';
import { StoredTree } from '../registry/tlog/proofs.ts';
import { verifyConsistency, verifyInclusion } from '../registry/tlog/verify-proofs.ts';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));

describe('tlog: the Merkle tree in tiles', () => {
  it('has the root of RFC 9162 MTH at every size up to 600 (an independent, recursive computation)', () => {
    const all = leaves(600);
    const builder = new TileBuilder();
    expect(builder.root().equals(EMPTY_ROOT)).to.equal(true);
    for (const [i, leaf] of all.entries()) {
      builder.appendLeaf(leaf);
      expect(builder.root().toString('hex'), `size ${i + 1}`).to.equal(referenceRoot(all.slice(0, i + 1)).toString('hex'));
    }
  });

  it('has the right root at 2^16 + 3 leaves, where a level-2 tile appears', () => {
    const all = leaves(65539);
    const builder = new TileBuilder();
    for (const leaf of all) builder.appendLeaf(leaf);
    expect(builder.root().equals(referenceRoot(all))).to.equal(true);
    expect(builder.partialTiles().map((t) => [t.level, t.index, t.hashes.length])).to.deep.equal([[0, 256, 3], [2, 0, 1]]);
  });

  it('resumed from its stored right edge, grows the same tiles as in one go', () => {
    const all = leaves(1300);
    const stored = new Map<string, Buffer>();
    const keep = (tile: Tile) => stored.set(`${tile.level}/${tile.index}`, tileRecord(tile).hashes);
    let edge: Tile[] = [];
    for (const batch of [1, 254, 1, 300, 700, 44]) {
      const size = new TileBuilder(edge).size;
      const builder = new TileBuilder(edge, keep);
      for (const leaf of all.slice(size, size + batch)) builder.appendLeaf(leaf);
      builder.partialTiles().forEach(keep);
      const last = [...stored.entries()].map(([key, hashes]) => ({ level: Number(key.split('/')[0]), index: Number(key.split('/')[1]), hashes }))
        .filter((t, _, list) => t.index === Math.max(...list.filter((u) => u.level === t.level).map((u) => u.index)))
        .sort((a, b) => a.level - b.level);
      edge = edgeFromStored(last);
    }
    const once = new TileBuilder();
    for (const leaf of all) once.appendLeaf(leaf);
    expect(new TileBuilder(edge).root().equals(once.root())).to.equal(true);
    expect(splitHashes(stored.get('0/5')!)).to.have.length(20);
    expect(splitHashes(stored.get('1/0')!)).to.have.length(5);
    expect(tileWidth(1300, 0, 5)).to.equal(20);
    expect(tileWidth(1300, 1, 0)).to.equal(5);
    expect(tileWidth(1300, 0, 6)).to.equal(0);
  });
});

describe('tlog: inclusion and consistency proofs from the stored tiles', () => {
  const all = leaves(700);
  const stored = new Map<string, Buffer>();
  const builder = new TileBuilder([], (tile) => stored.set(`${tile.level}/${tile.index}`, tileRecord(tile).hashes));
  for (const leaf of all) builder.appendLeaf(leaf);
  builder.partialTiles().forEach((tile) => stored.set(`${tile.level}/${tile.index}`, tileRecord(tile).hashes));
  const tree = new StoredTree({ tlog: { tile: async (level: number, index: number) => {
    const hashes = stored.get(`${level}/${index}`);
    return hashes ? { level, index, hashes } : undefined;
  } } });
  const rootAt = (n: number) => referenceRoot(all.slice(0, n));

  it('proves consistency between any two sizes (RFC 9162 2.1.4), and a changed hash, size or root fails', async () => {
    for (const [m, n] of [[1, 1], [1, 2], [3, 7], [4, 8], [5, 700], [256, 700], [255, 257], [600, 699], [0, 5], [512, 700], [699, 700]] as const) {
      const proof = await tree.consistencyProof(m, n);
      expect(verifyConsistency(m, n, proof, rootAt(m), rootAt(n)), `${m} -> ${n}`).to.equal(true);
      if (m === 0 || m === n) continue;
      for (let i = 0; i < proof.length; i += 1) {
        const changed = proof.map((h, j) => (j === i ? Buffer.from(h.map((b, k) => (k === 0 ? b ^ 1 : b))) : h));
        expect(verifyConsistency(m, n, changed, rootAt(m), rootAt(n)), `${m} -> ${n}, hash ${i} changed`).to.equal(false);
      }
      expect(verifyConsistency(m, n, proof, rootAt(m), rootAt(n - 1))).to.equal(false);
      expect(verifyConsistency(m, n, proof, leafHash(Buffer.from('fork')), rootAt(n))).to.equal(false);
      expect(verifyConsistency(m, n, [], rootAt(m), rootAt(n))).to.equal(false);
    }
    expect(verifyConsistency(3, 3, [], rootAt(3), rootAt(4)), 'equal sizes need equal roots').to.equal(false);
  });

  it('proves inclusion at any index (RFC 9162 2.1.3), and a changed entry fails', async () => {
    for (const [index, size] of [[0, 1], [0, 700], [255, 256], [300, 513], [699, 700], [5, 6]] as const) {
      const proof = await tree.inclusionProof(index, size);
      expect(verifyInclusion(Buffer.from(`entry ${index}`), index, size, proof, rootAt(size)), `${index} in ${size}`).to.equal(true);
      expect(verifyInclusion(Buffer.from(`entry ${index + 1}`), index, size, proof, rootAt(size))).to.equal(false);
    }
  });
});

describe('tlog: tile paths', () => {
  it('reads and writes tlog-tiles index paths', () => {
    expect(formatIndex(0)).to.equal('000');
    expect(formatIndex(1234067)).to.equal('x001/x234/067');
    expect(parseTilePath('0/x001/x234/067')).to.deep.equal({ level: 0, index: 1234067, width: 256 });
    expect(parseTilePath('1/000.p/7')).to.deep.equal({ level: 1, index: 0, width: 7 });
  });

  for (const hostile of ['0/1', '0/0000', '0/x000/001', '00/000', '64/000', '0/000.p/0', '0/000.p/256', '0/000.p/07', '0/000.p/', '0/x001', '0/001/', '0/../000', '-1/000', '0/x1/000', '0/x001/x001/x001/x001/x001/001', 'a/000', '0/000.p/1/2']) {
    it(`refuses ${JSON.stringify(hostile)}`, () => expect(parseTilePath(hostile)).to.equal(undefined));
  }
});

describe('tlog: signed-note checkpoints', () => {
  it('signs in the Go note format and opens only with the right key and name', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const text = checkpointText({ origin: 'pki.example/log', size: 3, root: Buffer.alloc(32, 7) });
    const note = signedNote(text, 'pki.example/log', raw, sign(null, Buffer.from(text), privateKey));
    expect(note).to.match(/^pki\.example\/log\n3\nBwcH[A-Za-z0-9+/=]+\n\n\u2014 pki\.example\/log [A-Za-z0-9+/=]+\n$/u);
    expect(openCheckpoint(note, 'pki.example/log', publicKey, raw)).to.deep.include({ origin: 'pki.example/log', size: 3 });
    expect(openCheckpoint(note, 'other/log', publicKey, raw)).to.equal(undefined);
    expect(openCheckpoint(note.replace('\n3\n', '\n4\n'), 'pki.example/log', publicKey, raw)).to.equal(undefined);
    const key = verifierKey('pki.example/log', raw);
    expect(key).to.equal(`pki.example/log+${keyHash('pki.example/log', raw).toString('hex')}+${Buffer.concat([Buffer.of(1), raw]).toString('base64')}`);
  });

  it('signs with an Ed25519 key made in SoftHSM (CKM_EDDSA), verified by node:crypto', async () => {
    const provider = await Pkcs11KeyProvider.open(await createTestToken());
    try {
      expect(await provider.ed25519Unsupported()).to.equal(undefined);
      const key = await provider.createEd25519Key('devid-log');
      expect((await provider.findEd25519Key('devid-log'))!.rawPublicKey.equals(key.rawPublicKey)).to.equal(true);
      const message = randomBytes(100);
      const signature = await provider.signEd25519(key, message);
      const { verify } = await import('node:crypto');
      expect(verify(null, message, key.publicKey, signature)).to.equal(true);
      expect(await provider.findKey('devid-log').catch((err: Error) => err.message)).to.match(/not on P-256 or P-384|undefined/);
    } finally {
      await provider.close();
    }
  });
});
