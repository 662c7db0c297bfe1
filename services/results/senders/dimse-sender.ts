import { DimseNetworkError, storeObjects } from '../../dimse-net/dcmjs-dimse.js';
import { SEND_TIMEOUT_MS, SendError, type OutgoingObject } from './types.js';

const CALLING_AE = 'FRACTRIAGE';

/**
 * DIMSE C-STORE SCU to a destination, over our DICOM network layer (services/dimse-net). One
 * association per version; every object must be answered with success (0x0000) or a warning (0xB...).
 */
export async function sendCStore(target: { aeTitle: string; host: string; port: number }, objects: OutgoingObject[]): Promise<void> {
  let answers: Awaited<ReturnType<typeof storeObjects>>;
  try {
    answers = await storeObjects({ ...target, callingAeTitle: CALLING_AE }, objects, { connectMs: 10_000, associationMs: SEND_TIMEOUT_MS, pduMs: SEND_TIMEOUT_MS });
  } catch (error) {
    if (error instanceof DimseNetworkError) throw new SendError(error.message);
    throw error;
  }
  const failed = answers.filter((a) => !(a.status === 0 || (a.status !== undefined && (a.status & 0xf000) === 0xb000)));
  if (failed.length) {
    const codes = failed.map((a) => (a.status === undefined ? 'no answer' : `0x${a.status.toString(16)}`));
    throw new SendError(`C-STORE to ${target.aeTitle}@${target.host}:${target.port}: ${failed.length} of ${objects.length} object(s) not stored (${codes.join(', ')})`);
  }
}
