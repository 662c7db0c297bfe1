/**
 * The one tag and VR table of the server (the web viewer in web/ keeps its own small copy until it
 * can import this module). Tags are written the way dicom-parser keys them: 'xggggeeee'.
 */

/** Every VR of PS3.5 §6.2. */
export const VRS: ReadonlySet<string> = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

/** VRs whose explicit-VR header has two reserved bytes and a 32-bit length (PS3.5 §7.1.2). */
export const LONG_LENGTH_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

export function isVr(text: string): boolean {
  return VRS.has(text);
}

/** The attributes the server reads, by keyword. */
export const Tag = {
  FileMetaInformationGroupLength: 'x00020000',
  MediaStorageSOPClassUID: 'x00020002',
  MediaStorageSOPInstanceUID: 'x00020003',
  TransferSyntaxUID: 'x00020010',
  SOPClassUID: 'x00080016',
  SOPInstanceUID: 'x00080018',
  StudyDate: 'x00080020',
  StudyTime: 'x00080030',
  AccessionNumber: 'x00080050',
  Modality: 'x00080060',
  StudyDescription: 'x00081030',
  SeriesDescription: 'x0008103e',
  PatientName: 'x00100010',
  PatientID: 'x00100020',
  PatientBirthDate: 'x00100030',
  PatientSex: 'x00100040',
  PatientAge: 'x00101010',
  BodyPartExamined: 'x00180015',
  ViewPosition: 'x00185101',
  StudyInstanceUID: 'x0020000d',
  SeriesInstanceUID: 'x0020000e',
  SeriesNumber: 'x00200011',
  InstanceNumber: 'x00200013',
  Laterality: 'x00200060',
  ImageLaterality: 'x00200062',
  SamplesPerPixel: 'x00280002',
  PhotometricInterpretation: 'x00280004',
  PlanarConfiguration: 'x00280006',
  NumberOfFrames: 'x00280008',
  Rows: 'x00280010',
  Columns: 'x00280011',
  BitsAllocated: 'x00280100',
  BitsStored: 'x00280101',
  HighBit: 'x00280102',
  PixelRepresentation: 'x00280103',
  PixelPaddingValue: 'x00280120',
  WindowCenter: 'x00281050',
  WindowWidth: 'x00281051',
  RescaleIntercept: 'x00281052',
  RescaleSlope: 'x00281053',
  VOILUTFunction: 'x00281056',
  ModalityLUTSequence: 'x00283000',
  LUTDescriptor: 'x00283002',
  LUTExplanation: 'x00283003',
  LUTData: 'x00283006',
  VOILUTSequence: 'x00283010',
  RequestAttributesSequence: 'x00400275',
  RequestedProcedurePriority: 'x00401003',
  PresentationLUTShape: 'x20500020',
  PixelData: 'x7fe00010',
} as const;

/** 'x00280010' or '00280010' or '(0028,0010)' → [group, element]. */
export function tagNumbers(key: string): [number, number] {
  const hex = key.replace(/^x/, '').replace(/[^0-9a-fA-F]/g, '');
  return [parseInt(hex.slice(0, 4), 16), parseInt(hex.slice(4, 8), 16)];
}
