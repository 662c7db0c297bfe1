export type Codec = 'native' | 'deflate' | 'jpeg-dct' | 'jpeg-lossless' | 'jpeg-ls' | 'j2k' | 'rle';

export interface TransferSyntax {
  uid: string;
  name: string;
  codec: Codec;
  bigEndian: boolean;
  /** Decoded pixels are exactly the encoded ones. */
  lossless: boolean;
}

const table: TransferSyntax[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', codec: 'native', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', codec: 'native', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.2', name: 'Explicit VR Big Endian (retired)', codec: 'native', bigEndian: true, lossless: true },
  { uid: '1.2.840.10008.1.2.1.99', name: 'Deflated Explicit VR Little Endian', codec: 'deflate', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', codec: 'jpeg-dct', bigEndian: false, lossless: false },
  { uid: '1.2.840.10008.1.2.4.51', name: 'JPEG Extended (Process 2 & 4)', codec: 'jpeg-dct', bigEndian: false, lossless: false },
  { uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless, Non-Hierarchical (Process 14)', codec: 'jpeg-lossless', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.4.70', name: 'JPEG Lossless, Process 14, SV1', codec: 'jpeg-lossless', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', codec: 'jpeg-ls', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Near-Lossless', codec: 'jpeg-ls', bigEndian: false, lossless: false },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 (Lossless Only)', codec: 'j2k', bigEndian: false, lossless: true },
  { uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000', codec: 'j2k', bigEndian: false, lossless: false },
  { uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', codec: 'rle', bigEndian: false, lossless: true },
];

const byUid = new Map(table.map((t) => [t.uid, t]));

export function transferSyntax(uid: string): TransferSyntax | undefined {
  return byUid.get(uid);
}

export const SUPPORTED_TRANSFER_SYNTAXES: readonly TransferSyntax[] = table;
