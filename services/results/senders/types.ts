/** One DICOM object on its way to a destination. */
export interface OutgoingObject {
  sopInstanceUid: string;
  sopClassUid: string;
  bytes: Buffer;
}

/** A send that failed, with a reason fit for the admin page (no patient data). */
export class SendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SendError';
  }
}

/** Seconds a destination may take to answer before the attempt counts as failed. */
export const SEND_TIMEOUT_MS = 60_000;
