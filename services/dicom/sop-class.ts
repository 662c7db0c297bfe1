/**
 * Storage SOP classes. Image classes are stored and decoded; projection radiography (CR, DX) is
 * what the model reads, the other images get a "not applicable" AI result from the worker.
 * Non-image classes are objects a study may hold beside its images (reports, key images,
 * presentation states, dose reports): never decoded, never classified.
 */
export const IMAGE_SOP_CLASSES: Readonly<Record<string, string>> = {
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

export const NON_IMAGE_SOP_CLASSES: Readonly<Record<string, string>> = {
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
  '1.2.840.10008.5.1.4.1.1.11.1': 'Grayscale Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.2': 'Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.3': 'Pseudo-Color Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.11.4': 'Blending Softcopy Presentation State Storage',
  '1.2.840.10008.5.1.4.1.1.104.1': 'Encapsulated PDF Storage',
};

/** Well-known UIDs the server writes (SR and Secondary Capture output, samples). */
export const SopClass = {
  ComputedRadiography: '1.2.840.10008.5.1.4.1.1.1',
  DigitalXRayForPresentation: '1.2.840.10008.5.1.4.1.1.1.1',
  DigitalXRayForProcessing: '1.2.840.10008.5.1.4.1.1.1.1.1',
  DigitalMammographyForPresentation: '1.2.840.10008.5.1.4.1.1.1.2',
  SecondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
  BasicTextSr: '1.2.840.10008.5.1.4.1.1.88.11',
  EnhancedSr: '1.2.840.10008.5.1.4.1.1.88.22',
  ComprehensiveSr: '1.2.840.10008.5.1.4.1.1.88.33',
  KeyObjectSelection: '1.2.840.10008.5.1.4.1.1.88.59',
  XRayRadiationDoseSr: '1.2.840.10008.5.1.4.1.1.88.67',
  GrayscaleSoftcopyPresentationState: '1.2.840.10008.5.1.4.1.1.11.1',
} as const;

/** Projection radiography: what the fracture model was trained on. */
export const RADIOGRAPHY_MODALITIES: ReadonlySet<string> = new Set(['CR', 'DX', 'DR']);

export function isImageStorage(sopClassUid: string): boolean {
  return Object.hasOwn(IMAGE_SOP_CLASSES, sopClassUid);
}

export function isNonImageStorage(sopClassUid: string): boolean {
  return Object.hasOwn(NON_IMAGE_SOP_CLASSES, sopClassUid);
}

/** What ingest stores: images, and the non-image objects of their studies. */
export function isStorableSopClass(sopClassUid: string): boolean {
  return isImageStorage(sopClassUid) || isNonImageStorage(sopClassUid);
}

/** The name of a storage class we know, for messages; undefined for anything else. */
export function sopClassName(sopClassUid: string): string | undefined {
  return IMAGE_SOP_CLASSES[sopClassUid] ?? NON_IMAGE_SOP_CLASSES[sopClassUid];
}
