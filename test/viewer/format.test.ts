import { describe, expect, it } from 'vitest';
import { aiStateOf, patientAge } from '../../services/api/routes/worklist.js';

describe('worklist fields', () => {
  it('shows the DICOM age, else computes it from the birth and study dates', () => {
    expect(patientAge({ patient_age: '045Y', patient_birth_date: null, study_date: null })).toBe('45Y');
    expect(patientAge({ patient_age: '003M', patient_birth_date: null, study_date: null })).toBe('3M');
    expect(patientAge({ patient_age: null, patient_birth_date: '19800615', study_date: '20260614' })).toBe('45Y');
    expect(patientAge({ patient_age: null, patient_birth_date: '19800615', study_date: '20260615' })).toBe('46Y');
    expect(patientAge({ patient_age: null, patient_birth_date: null, study_date: '20260615' })).toBeNull();
  });

  it('shows pending until the roll-up has a flag, then the flag', () => {
    expect(aiStateOf({ ai_state: 'pending', ai_flag: null })).toBe('pending');
    expect(aiStateOf({ ai_state: 'pending', ai_flag: 'definite' })).toBe('definite'); // an early flag shows at once
    expect(aiStateOf({ ai_state: 'complete', ai_flag: 'not_applicable' })).toBe('not_applicable');
    expect(aiStateOf({ ai_state: 'complete', ai_flag: 'failed' })).toBe('failed');
  });
});
