print('hello from the dev source tree')
