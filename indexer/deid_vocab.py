"""Vocabulary the report de-identifier (indexer/deid_philter.py) never removes: cardiology and CMR words.

Philter's name lists hold about 97,000 first and 161,000 family names, among them clinical eponyms (Fabry,
Danon, Ebstein, Fontan, Fallot, Simpson, Louise) and everyday words (Will, Grace, Park, Summer, Husband).
A word listed here is tagged as a common noun (so the name lists do not fire on it) and is cut out of any
span another rule marks, so it survives de-identification.

- CLINICAL_WORDS: the phantom report lexicon's words (phantom/reports/lexicon.py, copied here because the
  indexer may not import the phantom), standard cardiology / CMR abbreviations, anatomy, report headings,
  scanner, contrast and device names, units, relation words (wife, son: kept so a reader knows who was
  told), and function words. Lower case; a word that is also a common given name is NOT listed alone.
- EPONYM_PHRASES: eponyms that are also ordinary names (Lake Louise, Simpson, Williams, Turner, Graham
  Steell, Austin Flint, Glenn, Ross, Mustard): kept only in their clinical phrase.
"""
from __future__ import annotations

import re

_LEXICON = """
abnormal above absence acceleration accumulation adaptation additional al also amount amyloid
amyloidosis an and aneurysm aneurysmal angiography anterior aorta aortic aortopathy apex apical
appearance appearing appropriate are arrhythmia arrhythmogenic artery arvc arvd as ascending assess
assessment asymmetric at athlete athletic atria atrial atrium attr based bav be before benign
biatrial bicommissural bicuspid bilateral biventricular blood blotchy both breath bulging burned by
cad calcific calculated cannot cardiac cardiomyopathy cascade catheterization cavity chains chamber
characteristic chronic circumferential circumflex clinical clinically cmr collection compatible
concentric concentrically concerning confined consider consideration considered consistent contrast
coronary correlate correlation could counseling criteria cyst dcm de degraded degree delayed
demonstrates demonstrating depressed descending described diagnosis diagnostic diastole differential
difficulty diffuse dilatated dilated dilation dimensions diminished disease disproportionate
distinguish distribution doubtful due dynamic dyskinesia ectatic edvi ef effusion effusive ejection
elevated end endocardial enhancement enlarged enlargement epicardial equivocal evaluation evidence
examination excluded excluding exercise extending extracardiac family favor favored favoring
features fibrosis finding findings first flattening flow fluid focal focus follow for force fraction
free from full fully function further gadolinium generalized genetic global globally gradient
granulomatous greater half hcm healed heart hepatic hernia heterogeneous hiatal hiatus hocm holding
holds hydrothorax hypercontractile hyperdynamic hyperenhancement hypertension hypertensive
hypertrophic hypertrophy hypokinesis hypokinetic icm idiopathic image imaging impaired impression in
incidental incidentally includes including increase indicate indicated induced infarct infarction
infiltration infiltrative inflammation inflammatory insertion insertions insufficiency intact
interventricular intracardiac intramural inverted involvement involving irregular is ischemia
ischemic isolated junction junctions keeping kinetics la lad laminated late lateral lcx leaflet left
less lge light likely limit limited limits liver loaded lv lvef lvh lvot made markedly mass
massively maximal may mde measured mi mid midwall mildly minimal minimally mitral ml mm moderately
morphology most motion mr mri multifocal myocardial myocarditis myocardium nicm no non nonischemic
nonspecific normal not note noted nothing nuclear nulling obstruction obstructive of old or order
out outer outflow overall overload patchy pericardial phase phenotype physiologic pleural point
points pool possibility possibly post predominant predominantly preserved pressure pressures
previous prior probably process producing pulmonary punctate pyrophosphate quality ra raising ratio
rca recommend recommendation recommended recover reduced reflect reflecting regional regurgitation
related relatives remains remodeling remote replacement represent representing rhythm right root rv
rvef sam sarcoid sarcoidosis sarcomeric scar scarred scintigraphy screening segment segments septal
septum sequelae serum severely shaped shows shunt significance simple size sized sliding slightly
small spade specifically stage stenosis stenotic structural structurally study subendocardial
subepicardial suboptimal substantially subtype such suggest suggesting suggestion suggestive
supranormal suspicious symmetric systolic tamponade task territory testing than the there thickened
thickening thickest thickness thin thrombus tiny to trace tract transmural transmurally type typical
uncertain under unimpaired unlikely unremarkable up valve variant ventricle ventricles ventricular
viability viable vigorous volume volumes wall walled walls with within without yamaguchi
"""

_CARDIOLOGY = """
cmr cmri mri mr mra ct cta ctca pet spect echo tte toe tee ecg ekg holter icd crt crtd crtp ppm pacemaker
pacing lv rv la ra lvot rvot lvef rvef ef edv esv sv edvi esvi svi lvedv lvesv lvedvi lvesvi rvedv rvesv
rvedvi rvesvi lvsv rvsv co ci lvm lvmi mass lge mde ecv t1 t2 t2w t2star stir ssfp bssfp cine molli shmolli
saturation psir ir mag phase contrast velocity vel pc venc qp qs flow regurgitant fraction rf rvol
gadolinium gadobutrol gadoterate gadovist dotarem clariscan multihance magnevist prohance gbca adenosine
regadenoson dobutamine stress rest perfusion ischaemia ischemia ischaemic ischemic infarct infarction mi
stemi nstemi acs cad ihd cabg pci stent lad lcx cx rca om d1 d2 pda plv lm lmca diagonal obtuse marginal
ramus intermedius septal perforator territory territories segment segments segmental aha bullseye basal
mid apical apex inferolateral inferoseptal anteroseptal anterolateral inferior anterior lateral posterior
septum septal wall walls free myocardium myocardial endocardium endocardial epicardium epicardial
subendocardial subepicardial midwall transmural transmurality pericardium pericardial pericarditis
effusion tamponade constriction constrictive myocarditis myopericarditis cardiomyopathy dcm hcm hocm ncm
nicm lvnc noncompaction non compaction trabeculation trabeculated arvc arvd acm amyloid amyloidosis attr al
sarcoid sarcoidosis haemochromatosis hemochromatosis siderosis iron overload thalassaemia thalassemia
athlete athletic hypertrophy hypertrophic lvh dilated dilatation dilation dilatated hypokinesis hypokinetic
akinesis akinetic dyskinesis dyskinetic aneurysm pseudoaneurysm thrombus thrombi clot mass tumour tumor
myxoma lipoma fibroma fibroelastoma metastasis valve valves valvular aortic mitral tricuspid pulmonary
pulmonic bicuspid bav stenosis regurgitation insufficiency prolapse mvp mac annulus annular leaflet
leaflets chordae papillary sam gradient peak mean vmax pressure pasp rvsp pa pap aorta aortopathy
ascending descending arch root sinus sinuses sinotubular stj coarctation dissection ductus arteriosus pda
asd vsd pfo avsd tof tga cctga dorv hlhs dilv svc ivc conduit baffle shunt shunts switch arterial atrial
ventricular ventricle ventricles atrium atria appendage laa pulmonary veins vein pvs anomalous papvc tapvc
congenital repaired repair palliation palliated systemic subpulmonary univentricular single fontan fallot
tetralogy takotsubo fabry danon ebstein ebstein's brugada holter marfan noonan friedreich duchenne pompe
chagas eisenmenger blalock taussig rastelli bentall norwood jatene kommerell valsalva doppler bernoulli
agatston wenckebach mobitz kussmaul dressler loeffler loffler churg strauss wegener loeys dietz
parkinson lenegre carney libman sacks osler janeway cheyne barlow framingham kawasaki yamaguchi amplatzer
watchman mitraclip impella heartmate melody sapien corevalve evolut perimount hancock seldinger judkins
starling teichholz senning swan ganz emery dreifuss
siemens philips ge avanto aera skyra prisma vida sola ingenia achieva signa artist premier explorer tesla
af afib aflutter vt vf svt nsvt avnrt wpw lbbb rbbb avb chb qrs qt qtc pr bpm hr bp sbp dbp nyha ccs hf
hfref hfmref hfpef hfref gdmt ace acei arb arni sglt2 mra bnp ntprobnp troponin hstnt hstni crp esr
hb egfr ckd dm htn hypertension diabetes dyslipidaemia smoker copd osa bmi bsa sob sobe dyspnoea dyspnea
chest pain syncope presyncope palpitations breathlessness fatigue oedema edema ankle murmur
family history sudden death scd screening genetic gene variant mutation carrier sarcomeric mybpc3 myh7
tnnt2 lmna ttn flnc dsp pkp2 scn5a titin lamin desmoplakin
impression findings conclusion conclusions summary report technique indication indications history
clinical details comparison previous prior recommendation recommendations comment comments opinion plan
addendum examination study scan protocol sequences sequence acquired acquisition images imaging views view
sax hla vla lvot 2ch 3ch 4ch short long axis axial coronal sagittal oblique localiser localizer
normal abnormal mild mildly moderate moderately severe severely borderline preserved reduced impaired
increased decreased elevated raised low high upper lower limits limit range mean median max min
no not nil none without with and or of the a an in on at to from for by as is are was were be been being
this that these those there here it its which who whom whose what when where than then also but if so
per via vs versus each both either neither all any some most more less few several other another same
has have had having do does did done shows showed shown show demonstrates demonstrated consistent
compatible suggestive suggest suggests suggesting likely unlikely possible probable probably possibly
evidence features appearances appearance seen noted identified visualised visualized excluded
discussed reviewed reported dictated verified authorised authorized signed copied cc seen by referred
referral referring requested request requesting clinician consultant registrar fellow radiologist
cardiologist physician surgeon nurse sonographer radiographer gp team mdt multidisciplinary meeting clinic
letter telephone phone tel email fax contact contacted informed told called spoke attended present
accompanied declined consented consent agreed
patient patients pt pts mr mrs ms miss mx dr prof professor doctor sir madam colleague dear regards thank
you kind sincerely
wife husband partner spouse son daughter mother father mum mom dad parent parents brother sister sibling
siblings child children grandson granddaughter grandmother grandfather aunt uncle niece nephew cousin
carer caregiver guardian relative relatives family friend next kin nok
male female man woman boy girl year years yr yrs old aged age month months week weeks day days hour hours
minute minutes ago today yesterday tomorrow annually yearly follow up repeat interval
tafamidis mavacamten entresto sacubitril valsartan bisoprolol ramipril apixaban rivaroxaban edoxaban
dabigatran warfarin amiodarone flecainide sotalol digoxin furosemide spironolactone eplerenone dapagliflozin
empagliflozin ivabradine atorvastatin aspirin clopidogrel ticagrelor
he she his her hers him they them their we our us me my it its i who
spectra spectrum spectroscopy mrs
cardiology radiology cardiac cardiothoracic surgery medicine department ward unit service imaging
mm cm ml mls ms sec msec kg cm2 m2 g gm mmhg hz khz mt ml/m2 percent
"""

_GIVEN_NAMES_TOO = {"max", "gene", "melody", "sam", "emery", "vida", "sola", "artist", "premier", "mac", "carney"}
CLINICAL_WORDS: frozenset[str] = frozenset((_LEXICON + _CARDIOLOGY).split()) - _GIVEN_NAMES_TOO

EPONYM_PHRASES = re.compile(
    r"(?i:\b(?:Lake[ -]Louise|Simpson'?s?(?:\s+(?:method|biplane|rule|technique|disc|discs))|"
    r"(?:Williams|Turner|Becker|Barth|Alagille|Holt[ -]Oram|DiGeorge|Down|Edwards|Leopard|LEOPARD)'?s?\s+syndrome|"
    r"Becker\s+(?:muscular\s+)?dystrophy|Austin[ -]Flint|Graham[ -]Steell|Glenn(?:\s+(?:shunt|procedure|circulation|anastomosis))|"
    r"(?:bidirectional|classic)\s+Glenn|Ross\s+(?:procedure|operation)|(?:Mustard|Senning)(?:\s+(?:procedure|repair|baffle|operation))|"
    r"Carpentier[ -]Edwards|St\.?\s+Jude\s+(?:Medical|valve|mechanical)|Boston\s+Scientific|"
    r"Wilkins\s+score|Kounis\s+syndrome|Task\s+Force(?:\s+criteria)?|Dallas\s+criteria|Bruce\s+protocol|Stokes[ -]Adams|Adams[ -]Stokes|"
    r"Wolff[ -]Parkinson[ -]White|Bland[ -]White[ -]Garland|Lown[ -]Ganong[ -]Levine|Anderson[ -]Fabry|"
    r"Emery[ -]Dreifuss|Loeys[ -]Dietz|Ehlers[ -]Danlos|Churg[ -]Strauss|Libman[ -]Sacks|Cheyne[ -]Stokes|"
    r"Frank[ -]Starling|Swan[ -]Ganz|Damus[ -]Kaye[ -]Stansel|Blalock[ -]Taussig|Kearns[ -]Sayre|"
    r"Pompe|Chagas|Kawasaki|Takayasu|Behcet|Behçet|Whipple|Lyme|Hodgkin|Friedreich|Duchenne|Noonan|Marfan)"
    r"(?:'s)?\b)")
