/**
 * The one transfer-syntax table: what ingest accepts is exactly what the image pipeline decodes.
 * Anything else is refused at upload with 0xC122.
 */
export type Codec = 'native' | 'deflate' | 'jpeg-dct' | 'jpeg-lossless' | 'jpeg-ls' | 'j2k' | 'rle';

export interface TransferSyntax {
  uid: string;
  name: string;
  codec: Codec;
  bigEndian: boolean;
  explicitVr: boolean;
  /** The data set after the meta header is a raw deflate stream. */
  deflated: boolean;
  /** Pixel Data is a sequence of fragments (compressed codestreams). */
  encapsulated: boolean;
  /** Decoded pixels are exactly the encoded ones. */
  lossless: boolean;
}

export const IMPLICIT_LITTLE = '1.2.840.10008.1.2';
export const EXPLICIT_LITTLE = '1.2.840.10008.1.2.1';
export const EXPLICIT_BIG = '1.2.840.10008.1.2.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';

const native = { bigEndian: false, explicitVr: true, deflated: false, encapsulated: false, lossless: true };
const compressed = { bigEndian: false, explicitVr: true, deflated: false, encapsulated: true };

const table: TransferSyntax[] = [
  { ...native, uid: IMPLICIT_LITTLE, name: 'Implicit VR Little Endian', codec: 'native', explicitVr: false },
  { ...native, uid: EXPLICIT_LITTLE, name: 'Explicit VR Little Endian', codec: 'native' },
  { ...native, uid: EXPLICIT_BIG, name: 'Explicit VR Big Endian (retired)', codec: 'native', bigEndian: true },
  { ...native, uid: DEFLATED, name: 'Deflated Explicit VR Little Endian', codec: 'deflate', deflated: true },
  { ...compressed, uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', codec: 'jpeg-dct', lossless: false },
  { ...compressed, uid: '1.2.840.10008.1.2.4.51', name: 'JPEG Extended (Process 2 & 4)', codec: 'jpeg-dct', lossless: false },
  { ...compressed, uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless, Non-Hierarchical (Process 14)', codec: 'jpeg-lossless', lossless: true },
  { ...compressed, uid: '1.2.840.10008.1.2.4.70', name: 'JPEG Lossless, Process 14, SV1', codec: 'jpeg-lossless', lossless: true },
  { ...compressed, uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', codec: 'jpeg-ls', lossless: true },
  { ...compressed, uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Near-Lossless', codec: 'jpeg-ls', lossless: false },
  { ...compressed, uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 (Lossless Only)', codec: 'j2k', lossless: true },
  { ...compressed, uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000', codec: 'j2k', lossless: false },
  { ...compressed, uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', codec: 'rle', lossless: true },
];

const byUid = new Map(table.map((t) => [t.uid, t]));

export const SUPPORTED_TRANSFER_SYNTAXES: readonly TransferSyntax[] = table;

export function transferSyntax(uid: string): TransferSyntax | undefined {
  return byUid.get(uid);
}

export function isSupportedTransferSyntax(uid: string): boolean {
  return byUid.has(uid);
}
