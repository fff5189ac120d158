/** tlog-witness: a client sends at most 63 consistency proof lines. */
export const MAX_PROOF_LINES = 63;
/** tlog-witness 409 answers carry the witness's size in this media type. */
export const SIZE_MEDIA_TYPE = 'text/x.tlog.size';

export interface AddCheckpoint {
  oldSize: number;
  proof: Buffer[];
  /** The signed note, every signature line with it. */
  checkpoint: string;
}

const SIZE = /^(0|[1-9]\d{0,15})$/;

/** The add-checkpoint body: `old <size>`, one base64 hash per line, an empty line, the checkpoint. */
export function addCheckpointBody(request: AddCheckpoint): string {
  return `old ${request.oldSize}\n${request.proof.map((hash) => `${hash.toString('base64')}\n`).join('')}\n${request.checkpoint}`;
}

/** Reads an add-checkpoint body; the reason when it is not one (the witness answers 400). */
export function parseAddCheckpoint(body: string): AddCheckpoint | { malformed: string } {
  const lines = body.split('\n');
  const old = /^old (.*)$/.exec(lines[0] ?? '');
  if (!old || !SIZE.test(old[1]!) || !Number.isSafeInteger(Number(old[1]))) return { malformed: 'the first line must be "old <size>", the size in decimal without leading zeros' };
  const proof: Buffer[] = [];
  let at = 1;
  for (; at < lines.length && lines[at] !== ''; at += 1) {
    const hash = Buffer.from(lines[at]!, 'base64');
    if (hash.length !== 32 || hash.toString('base64') !== lines[at]) return { malformed: `proof line ${at} is not a base64 SHA-256 hash` };
    proof.push(hash);
  }
  if (at >= lines.length) return { malformed: 'no empty line before the checkpoint' };
  if (proof.length > MAX_PROOF_LINES) return { malformed: `more than ${MAX_PROOF_LINES} consistency proof lines` };
  const checkpoint = lines.slice(at + 1).join('\n');
  if (!checkpoint.endsWith('\n')) return { malformed: 'the checkpoint does not end with a newline' };
  return { oldSize: Number(old[1]), proof, checkpoint };
}
