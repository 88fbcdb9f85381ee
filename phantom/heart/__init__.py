"""phantom.heart: the analytic 3-D beating heart and the body around it. `anatomy.Heart` labels any
patient point with a tissue code and an LGE fraction at any cycle time, built from the AHA segment
tables (`segments`), the motion model (`motion`), the late-enhancement field (`lge`), the cavity
structures (`cavity`), the atria and aortic root (`atria`) and the static chest (`body`); `geometry`
places the heart in patient LPS space and cuts the imaging planes; `measure` re-measures the heart the
way a reader would contour it.
"""
