declare module 'cornerstone-core';
declare module 'cornerstone-tools';
declare module 'cornerstone-math';
declare module 'cornerstone-wado-image-loader';
declare module 'dicom-parser';
declare module 'hammerjs';
