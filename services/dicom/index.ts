/**
 * services/dicom: the DICOM format at the bottom of the server. No I/O, imports nothing of ours;
 * core, imaging, api, worker, cli and the protocol doors all import it.
 */
export { LONG_LENGTH_VRS, Tag, VRS, isVr, tagNumbers } from './dictionary.js';
export {
  DEFLATED, EXPLICIT_BIG, EXPLICIT_LITTLE, IMPLICIT_LITTLE, SUPPORTED_TRANSFER_SYNTAXES, isSupportedTransferSyntax, transferSyntax,
  type Codec, type TransferSyntax,
} from './transfer-syntax.js';
export {
  IMAGE_SOP_CLASSES, NON_IMAGE_SOP_CLASSES, RADIOGRAPHY_MODALITIES, SopClass, isImageStorage, isNonImageStorage, isStorableSopClass, sopClassName,
} from './sop-class.js';
export {
  DicomRejection, FailureReason, MAX_ERROR_COMMENT, Reason, WarningReason, quotable, type DicomProblem, type RequiredAttribute,
} from './failure-reason.js';
export { MAX_UID_LENGTH, isValidUid } from './uid.js';
export { nativePixelDataBytes, type DeclaredImage } from './image-size.js';
export { inflateBounded, type InflateLimits } from './inflate.js';
export {
  DEFAULT_MAX_INFLATED_BYTES, INFLATE_HEADER_ALLOWANCE, MAX_FRAGMENTS_PER_FRAME, asRejection, hasPart10Preamble,
  inferBareTransferSyntax, inflatedPart10, rawString, readDicom, type DataSet, type DicomFile, type Element, type ReadLimits,
} from './parser.js';
export { parseInstance, type InstanceMetadata } from './instance.js';
export {
  IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, encapsulate, encodeDataSet, fileMetaHeader, writePart10,
  type DicomItem, type DicomValue, type EncapsulatedPixels, type Part10Options,
} from './writer.js';
