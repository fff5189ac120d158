import { createHash } from 'node:crypto';

export function sha256Hex(data: BufferSource): string {
  const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  return createHash('sha256').update(bytes).digest('hex');
}
