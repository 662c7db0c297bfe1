import { SUPPORTED_TRANSFER_SYNTAXES } from '../../imaging/transfer-syntax.js';

/**
 * The upload accepts exactly what the image pipeline decodes: one table, in
 * services/imaging/transfer-syntax.ts. Anything else is refused at upload with 0xC122.
 */
export const TRANSFER_SYNTAXES: Record<string, string> = Object.fromEntries(SUPPORTED_TRANSFER_SYNTAXES.map((t) => [t.uid, t.name]));

export const IMPLICIT_LITTLE = '1.2.840.10008.1.2';
export const EXPLICIT_LITTLE = '1.2.840.10008.1.2.1';
export const EXPLICIT_BIG = '1.2.840.10008.1.2.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';

/** Pixel data stored as plain values (not encapsulated in fragments). */
export const NATIVE_SYNTAXES = new Set(SUPPORTED_TRANSFER_SYNTAXES.filter((t) => t.codec === 'native').map((t) => t.uid));

export function isSupportedTransferSyntax(uid: string): boolean {
  return uid in TRANSFER_SYNTAXES;
}
