/**
 * Image storage SOP classes we store. Projection radiography (CR, DX) is what the model reads;
 * the others are kept and shown but get a "not applicable" AI result from the worker.
 * Non-image objects of a study (below) are stored too; anything else is refused with 0x0122.
 */
export const IMAGE_SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.1': 'Computed Radiography Image Storage',
  '1.2.840.10008.5.1.4.1.1.1.1': 'Digital X-Ray Image Storage - For Presentation',
  '1.2.840.10008.5.1.4.1.1.1.1.1': 'Digital X-Ray Image Storage - For Processing',
  '1.2.840.10008.5.1.4.1.1.1.2': 'Digital Mammography X-Ray Image Storage - For Presentation',
  '1.2.840.10008.5.1.4.1.1.1.2.1': 'Digital Mammography X-Ray Image Storage - For Processing',
  '1.2.840.10008.5.1.4.1.1.1.3': 'Digital Intra-Oral X-Ray Image Storage - For Presentation',
  '1.2.840.10008.5.1.4.1.1.1.3.1': 'Digital Intra-Oral X-Ray Image Storage - For Processing',
  '1.2.840.10008.5.1.4.1.1.2': 'CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.4': 'MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.6.1': 'Ultrasound Image Storage',
  '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.1': 'Multi-frame Single Bit Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.2': 'Multi-frame Grayscale Byte Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.3': 'Multi-frame Grayscale Word Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.4': 'Multi-frame True Color Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.12.1': 'X-Ray Angiographic Image Storage',
  '1.2.840.10008.5.1.4.1.1.12.2': 'X-Ray Radiofluoroscopic Image Storage',
};

/** Projection radiography: what the fracture model was trained on. */
export const RADIOGRAPHY_MODALITIES = new Set(['CR', 'DX', 'DR']);

export function isImageSopClass(uid: string): boolean {
  return uid in IMAGE_SOP_CLASSES;
}

/**
 * Non-image objects that travel with radiographs (reports, key images, presentation states, dose
 * reports). Stored, acknowledged and retrievable so a router's push of a whole study succeeds;
 * the AI records "not applicable" for them at once.
 */
export const NON_IMAGE_SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.2': 'Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.3': 'Pseudo-Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.4': 'Blending Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.88.11': 'Basic Text SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.22': 'Enhanced SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.34': 'Comprehensive 3D SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.35': 'Extensible SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.50': 'Mammography CAD SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.59': 'Key Object Selection Document Storage',
  '1.2.840.10008.5.1.4.1.1.88.65': 'Chest CAD SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.67': 'X-Ray Radiation Dose SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.68': 'Radiopharmaceutical Radiation Dose SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.73': 'Patient Radiation Dose SR Storage',
  '1.2.840.10008.5.1.4.1.1.88.76': 'Enhanced X-Ray Radiation Dose SR Storage',
  '1.2.840.10008.5.1.4.1.1.104.1': 'Encapsulated PDF Storage',
};

export function isNonImageSopClass(uid: string): boolean {
  return uid in NON_IMAGE_SOP_CLASSES;
}

/** Everything ingest stores: images and the non-image objects of a study. */
export function isStorableSopClass(uid: string): boolean {
  return isImageSopClass(uid) || isNonImageSopClass(uid);
}
